{# All Odoo sale orders with their state; only state = 'sale' (Odoo 17) counts as a confirmed order.
   Orders deleted in the ERP (stg is_deleted) are not current: excluded. #}
select
    o.order_id,
    o.order_name,
    o.partner_id,
    coalesce(l.person_id, '-1') as person_sk,
    o.team_id,
    o.currency_id,
    o.state,
    o.state = 'sale' as is_confirmed,
    o.is_locked,
    o.ordered_at,
    cast(o.ordered_at as date) as order_date,
    o.committed_at,
    o.amount_untaxed,
    o.amount_tax,
    o.amount_total,
    o.created_at,
    o.updated_at
from {{ ref('stg_odoo__sale_orders') }} as o
left join {{ ref('int_identity_links') }} as l
    on l.source = 'odoo' and l.source_id = cast(o.partner_id as varchar)
where not o.is_deleted
