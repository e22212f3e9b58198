{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_odoo__stock_picking_types', 'picking_type_id', none) }}
),

renamed as (
    select
        picking_type_id,
        picking_type_name,
        picking_type_code,
        sequence_code,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ odoo_full_snapshot_deleted_keys('base_odoo__stock_picking_types', 'picking_type_id') }}
)

select
    r.*,
    d.picking_type_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.picking_type_id = r.picking_type_id
