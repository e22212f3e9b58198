with source as (
    {{ ranked_good_rows('base_odoo__product_products', 'product_id', 'updated_at') }}
),

renamed as (
    select
        product_id,
        product_template_id,
        product_code,
        is_active,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
