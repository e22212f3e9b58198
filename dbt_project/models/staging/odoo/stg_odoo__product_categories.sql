{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
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
),

deleted as (
    {{ odoo_deleted_keys('product_category', 'base_odoo__product_categories', 'category_id') }}
)

select
    r.*,
    d.category_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.category_id = r.category_id
