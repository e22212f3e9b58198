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
)

select * from renamed
