{# Outgoing pickings. On time = done on or before the scheduled date-time (kpi-definitions).
   Pickings deleted in the ERP are excluded. #}
select
    k.picking_id,
    k.picking_name,
    k.order_id,
    coalesce(l.person_id, '-1') as person_sk,
    k.state,
    k.state = 'done' as is_done,
    k.scheduled_at,
    k.deadline_at,
    k.done_at,
    cast(k.done_at as date) as done_date,
    case when k.state = 'done' then k.done_at <= k.scheduled_at end as is_on_time,
    case when k.state = 'done' then {{ seconds_between('k.scheduled_at', 'k.done_at') }} / 86400.0 end as delay_days
from {{ ref('stg_odoo__stock_pickings') }} as k
inner join {{ ref('stg_odoo__stock_picking_types') }} as t
    on t.picking_type_id = k.picking_type_id and t.picking_type_code = 'outgoing'
left join {{ ref('stg_odoo__sale_orders') }} as o on o.order_id = k.order_id
left join {{ ref('int_identity_links') }} as l
    on l.source = 'odoo' and l.source_id = cast(coalesce(o.partner_id, k.partner_id) as varchar)
where not k.is_deleted
