{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_odoo__stock_pickings', 'picking_id', 'updated_at') }}
),

renamed as (
    select
        picking_id,
        picking_name,
        origin,
        order_id,
        partner_id,
        picking_type_id,
        state,
        scheduled_at,
        deadline_at,
        done_at,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ odoo_deleted_keys('stock_picking', 'base_odoo__stock_pickings', 'picking_id') }}
)

select
    r.*,
    d.picking_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.picking_id = r.picking_id
