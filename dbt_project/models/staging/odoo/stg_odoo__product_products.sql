{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
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
),

deleted as (
    {{ odoo_deleted_keys('product_product', 'base_odoo__product_products', 'product_id') }}
)

select
    r.*,
    d.product_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.product_id = r.product_id
