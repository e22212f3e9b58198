{# Product lines of sale orders (section and note lines, display_type not null, are excluded; so are lines
   deleted in the ERP, and lines of deleted orders through the join with fct_orders). #}
select
    l.order_line_id,
    l.order_id,
    o.person_sk,
    coalesce(cast(l.product_id as varchar), '-1') as product_sk,
    o.state,
    o.is_confirmed,
    o.order_date,
    l.quantity,
    l.price_unit,
    l.discount_pct,
    l.price_subtotal,
    l.price_tax,
    l.price_total
from {{ ref('stg_odoo__sale_order_lines') }} as l
inner join {{ ref('fct_orders') }} as o on o.order_id = l.order_id
where l.display_type is null
    and not l.is_deleted
