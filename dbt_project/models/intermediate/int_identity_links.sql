{# Identity graph, deterministic rules only; every link records its rule.
   1. email_hash: Odoo partners and HubSpot contacts sharing a normalised (trim + lower) email hash are one person.
   2. no_email: a partner / contact without an email is a person of its own.
   3. ga4_user_id_is_odoo_partner_id: GA4 user_id is set at login to the Odoo partner id (property configuration).
   4. trustpilot_reference_id_is_order_name: a Trustpilot referenceId is the Odoo sale_order.name.
   5. trustpilot_referral_email: otherwise the invitation's referral email hash. #}
with partners as (
    select partner_id, email_hash from {{ ref('stg_odoo__res_partners') }}
),

contacts as (
    select contact_id, email_hash from {{ ref('stg_hubspot__contacts') }}
),

person_of_email as (
    select email_hash, 'p_' || substr(email_hash, 1, 20) as person_id
    from (
        select email_hash from partners where email_hash is not null
        union
        select email_hash from contacts where email_hash is not null
    ) as e
),

odoo_links as (
    select
        'odoo' as source,
        cast(p.partner_id as varchar) as source_id,
        coalesce(e.person_id, 'p_odoo_' || cast(p.partner_id as varchar)) as person_id,
        case when e.person_id is not null then 'email_hash' else 'no_email' end as rule
    from partners as p
    left join person_of_email as e on e.email_hash = p.email_hash
),

hubspot_links as (
    select
        'hubspot' as source,
        c.contact_id as source_id,
        coalesce(e.person_id, 'p_hubspot_' || c.contact_id) as person_id,
        case when e.person_id is not null then 'email_hash' else 'no_email' end as rule
    from contacts as c
    left join person_of_email as e on e.email_hash = c.email_hash
),

ga4_links as (
    select distinct
        'ga4' as source,
        ev.user_id as source_id,
        o.person_id,
        'ga4_user_id_is_odoo_partner_id' as rule
    from {{ ref('stg_ga4__events') }} as ev
    inner join odoo_links as o on o.source_id = ev.user_id
    where ev.user_id is not null
),

trustpilot_links as (
    select
        'trustpilot' as source,
        r.review_id as source_id,
        coalesce(o.person_id, e.person_id) as person_id,
        case when o.person_id is not null then 'trustpilot_reference_id_is_order_name'
             else 'trustpilot_referral_email' end as rule
    from {{ ref('stg_trustpilot__reviews') }} as r
    left join {{ ref('stg_odoo__sale_orders') }} as so on so.order_name = r.reference_id
    left join odoo_links as o on o.source_id = cast(so.partner_id as varchar)
    left join person_of_email as e on e.email_hash = r.referral_email_hash
    where coalesce(o.person_id, e.person_id) is not null
)

select * from odoo_links
union all
select * from hubspot_links
union all
select * from ga4_links
union all
select * from trustpilot_links
