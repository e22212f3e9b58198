{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_odoo__sale_order_lines', 'order_line_id', 'updated_at') }}
),

renamed as (
    select
        order_line_id,
        order_id,
        product_id,
        display_type,
        state,
        quantity,
        price_unit,
        discount_pct,
        price_subtotal,
        price_tax,
        price_total,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ odoo_deleted_keys('sale_order_line', 'base_odoo__sale_order_lines', 'order_line_id') }}
)

select
    r.*,
    d.order_line_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.order_line_id = r.order_line_id
