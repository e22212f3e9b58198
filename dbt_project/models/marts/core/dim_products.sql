{# Sellable product variants with template name and category path; product_sk '-1' is the unknown member.
   A variant deleted in the ERP (or whose template was) stays as a member flagged is_deleted, so order lines that
   still point at it keep their key; current catalogue = not is_deleted. #}
select
    cast(p.product_id as varchar) as product_sk,
    p.product_id,
    p.product_code,
    t.product_name,
    t.detailed_type,
    t.list_price,
    c.category_name,
    c.category_path,
    p.is_active and coalesce(t.is_active, true) as is_active,
    p.is_deleted or coalesce(t.is_deleted, false) as is_deleted,
    coalesce(p.deleted_detected_at, t.deleted_detected_at) as deleted_detected_at
from {{ ref('stg_odoo__product_products') }} as p
left join {{ ref('stg_odoo__product_templates') }} as t on t.product_template_id = p.product_template_id
left join {{ ref('stg_odoo__product_categories') }} as c on c.category_id = t.category_id

union all

select '-1', null, null, 'Unknown product', null, null, null, null, false, false, null
