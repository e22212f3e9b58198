{# One row per resolved person (int_identity_links); person_sk '-1' is the unknown member. A person may have several
   Odoo partners (the same normalised e-mail on two ERP records): odoo_partner_id is the lowest, odoo_partners counts
   them, confirmed_orders / lifetime_net_revenue sum over all of them. Current state only:
   the SCD2 history of the underlying ERP / CRM records is dim_customers_history (snapshots).
   is_company: an Odoo company partner (is_company = true) - not a person in customer KPIs (is_customer false).
   Hard deletes (stg is_deleted): a person's attributes come from its records still live at the source; a person whose
   every ERP / CRM record is deleted stays a member flagged is_deleted (attributes as last seen), so facts of other
   sources that still resolve to it keep their key. Current customers = not is_deleted. Deleted orders do not count.
   segment: the person's current segment (dim_customer_segments is_current: computed from all data up to the last
   month end of the data); a person without any activity (no order, ticket, session, e-mail open, response or
   review) is 'prospect'; the unknown member 'unresolved' (docs/segments.md). #}
with links as (
    select * from {{ ref('int_identity_links') }}
),

partners as (
    select * from {{ ref('stg_odoo__res_partners') }}
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

orders as (
    select l.person_id, min(o.ordered_at) as first_order_at, count(*) as confirmed_orders,
           sum(o.amount_untaxed) as lifetime_net_revenue
    from {{ ref('stg_odoo__sale_orders') }} as o
    inner join links as l on l.source = 'odoo' and l.source_id = cast(o.partner_id as varchar)
    where o.state = 'sale'
        and not o.is_deleted
    group by 1
),

-- each person's ERP / CRM records; when the person has a live record, only its live records describe it
records as (
    select
        l.*,
        coalesce(p.is_deleted, c.is_deleted, false) as record_deleted,
        coalesce(p.deleted_detected_at, c.deleted_detected_at) as record_deleted_at,
        min(case when coalesce(p.is_deleted, c.is_deleted, false) then 1 else 0 end)
            over (partition by l.person_id) = 1 as person_deleted
    from links as l
    left join partners as p on l.source = 'odoo' and cast(p.partner_id as varchar) = l.source_id
    left join contacts as c on l.source = 'hubspot' and c.contact_id = l.source_id
    where l.source in ('odoo', 'hubspot')
),

people as (
    select
        l.person_id,
        min(case when l.source = 'odoo' then p.partner_id end) as odoo_partner_id,
        min(case when l.source = 'hubspot' then c.contact_id end) as hubspot_contact_id,
        count(case when l.source = 'odoo' then 1 end) as odoo_partners,
        count(case when l.source = 'hubspot' then 1 end) as hubspot_contacts,
        max(coalesce(p.email_hash, c.email_hash)) as email_hash,
        max(coalesce(p.phone_hash, c.phone_hash)) as phone_hash,
        max(coalesce(p.name_hash, c.name_hash)) as name_hash,
        max(p.country_id) as country_id,
        max(case when p.is_company then 1 else 0 end) = 1 as is_company,
        min(coalesce(p.created_at, c.created_at)) as first_seen_at,
        min(l.rule) as identity_rule,
        max(case when l.person_deleted then 1 else 0 end) = 1 as is_deleted,
        max(case when l.person_deleted then l.record_deleted_at end) as deleted_detected_at
    from records as l
    left join partners as p on l.source = 'odoo' and cast(p.partner_id as varchar) = l.source_id
    left join contacts as c on l.source = 'hubspot' and c.contact_id = l.source_id
    where l.person_deleted or not l.record_deleted
    group by 1
)

select
    p.person_id as person_sk,
    p.odoo_partner_id,
    p.hubspot_contact_id,
    p.odoo_partners,
    p.hubspot_contacts,
    p.email_hash,
    p.phone_hash,
    p.name_hash,
    p.country_id,
    p.is_company,
    p.first_seen_at,
    o.first_order_at,
    coalesce(o.confirmed_orders, 0) as confirmed_orders,
    coalesce(o.lifetime_net_revenue, 0) as lifetime_net_revenue,
    o.first_order_at is not null and not p.is_company as is_customer,
    p.identity_rule,
    p.is_deleted,
    p.deleted_detected_at,
    cast(coalesce(s.segment, 'prospect') as {{ dbt.type_string() }}) as segment
from people as p
left join orders as o on o.person_id = p.person_id
left join {{ ref('dim_customer_segments') }} as s on s.person_sk = p.person_id and s.is_current

union all

select
    '-1', null, null, 0, 0, null, null, null, null, false, null, null, 0, 0, false, 'unknown_member', false, null, 'unresolved'
