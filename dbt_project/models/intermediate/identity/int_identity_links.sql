{# Identity graph, deterministic rules only; every link records its rule. Ambiguous evidence is reported in
   int_identity_conflicts (same logic, shared CTEs in macro-free SQL below).
   1. email_hash: Odoo partners and HubSpot contacts sharing a normalised (trim + lower + ss) email hash are one
      person - also when the hash sits on two or more Odoo partners: one person with several ERP records (a second
      account at checkout, an e-mail typed in capitals) counts once in every customer KPI (docs/DECISIONLOG.md
      "Issue 14 - Customers are people"); the ERP duplicates stay listed in int_identity_conflicts.
      Exception: a company partner (is_company) whose hash is also on an individual partner is not merged into
      that person (rule company_partner_not_merged): a company is not a person, its mailbox may be its contact's.
   2. no_email: a partner / contact without an email is a person of its own.
   3. ga4_user_id_is_odoo_partner_id: GA4 user_id is set at login to the Odoo partner id (property configuration).
   4. ga4_pseudo_id_after_login: a user_pseudo_id (browser) belongs to the person whose user_id appears on any of
      its events - unless its user_ids resolve to two or more persons (a shared device): then it stays unlinked.
   5. trustpilot_reference_id_is_order_name: a Trustpilot referenceId is the Odoo sale_order.name -> partner -> person.
   6. trustpilot_referral_email: otherwise the invitation's referral email hash.
   7. email_recipient_hash: a HubSpot marketing-email recipient hash equals a person's email hash. #}
with partners as (
    select partner_id, email_hash, coalesce(is_company, false) as is_company
    from {{ ref('stg_odoo__res_partners') }}
),

contacts as (
    select contact_id, email_hash from {{ ref('stg_hubspot__contacts') }}
),

individual_partner_emails as (
    select distinct email_hash
    from partners
    where email_hash is not null and not is_company
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
        cast(p.partner_id as {{ dbt.type_string() }}) as source_id,
        case when p.email_hash is null or (p.is_company and i.email_hash is not null)
                 then 'p_odoo_' || cast(p.partner_id as {{ dbt.type_string() }})
             else e.person_id end as person_id,
        case when p.email_hash is null then 'no_email'
             when p.is_company and i.email_hash is not null then 'company_partner_not_merged'
             else 'email_hash' end as rule
    from partners as p
    left join person_of_email as e on e.email_hash = p.email_hash
    left join individual_partner_emails as i on i.email_hash = p.email_hash
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

ga4_user_ids as (
    select distinct user_pseudo_id, user_id
    from {{ ref('int_ga4_identity_pairs') }}
    where user_id is not null
),

ga4_links as (
    select distinct
        'ga4' as source,
        u.user_id as source_id,
        o.person_id,
        'ga4_user_id_is_odoo_partner_id' as rule
    from ga4_user_ids as u
    inner join odoo_links as o on o.source_id = u.user_id
),

ga4_pseudo_candidates as (
    select u.user_pseudo_id, min(g.person_id) as person_id, count(distinct g.person_id) as persons
    from ga4_user_ids as u
    inner join ga4_links as g on g.source_id = u.user_id
    where u.user_pseudo_id is not null
    group by 1
),

ga4_pseudo_links as (
    select
        'ga4_pseudo' as source,
        user_pseudo_id as source_id,
        person_id,
        'ga4_pseudo_id_after_login' as rule
    from ga4_pseudo_candidates
    where persons = 1
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
    left join odoo_links as o on o.source_id = cast(so.partner_id as {{ dbt.type_string() }})
    left join person_of_email as e on e.email_hash = r.referral_email_hash
    where coalesce(o.person_id, e.person_id) is not null
),

email_recipient_links as (
    select distinct
        'email_recipient' as source,
        ev.recipient_hash as source_id,
        e.person_id,
        'email_recipient_hash' as rule
    from {{ ref('stg_hubspot__email_events') }} as ev
    inner join person_of_email as e on e.email_hash = ev.recipient_hash
)

select * from odoo_links
union all
select * from hubspot_links
union all
select * from ga4_links
union all
select * from ga4_pseudo_links
union all
select * from trustpilot_links
union all
select * from email_recipient_links
