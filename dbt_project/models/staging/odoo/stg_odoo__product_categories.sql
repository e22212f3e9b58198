with source as (
    {{ ranked_good_rows('base_odoo__product_categories', 'category_id', 'updated_at') }}
),

renamed as (
    select
        category_id,
        parent_category_id,
        category_name,
        category_path,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
