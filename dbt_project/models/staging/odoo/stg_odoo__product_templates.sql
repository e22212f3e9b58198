with source as (
    {{ ranked_good_rows('base_odoo__product_templates', 'product_template_id', 'updated_at') }}
),

renamed as (
    select
        product_template_id,
        category_id,
        product_name,
        detailed_type,
        list_price,
        is_sellable,
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
