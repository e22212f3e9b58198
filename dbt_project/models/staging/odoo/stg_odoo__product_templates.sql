{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
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
),

deleted as (
    {{ odoo_deleted_keys('product_template', 'base_odoo__product_templates', 'product_template_id') }}
)

select
    r.*,
    d.product_template_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.product_template_id = r.product_template_id
