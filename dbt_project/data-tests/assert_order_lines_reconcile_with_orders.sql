-- Integration check: each order's amount_untaxed equals the sum of its product lines' price_subtotal (1 cent tolerance).
select o.order_id, o.amount_untaxed, l.lines_subtotal
from {{ ref('fct_orders') }} as o
left join (
    select order_id, sum(price_subtotal) as lines_subtotal
    from {{ ref('fct_order_lines') }}
    group by 1
) as l on l.order_id = o.order_id
where abs(o.amount_untaxed - coalesce(l.lines_subtotal, 0)) > 0.01
