{# Ambiguous identity evidence and how int_identity_links resolved it, one row per record concerned:
   - email_hash_on_multiple_odoo_partners: one normalised email hash on two or more Odoo partners (res_partner
     has no commercial_partner_id in our extract, so every partner is its own commercial partner): duplicate ERP
     records of one person, merged into that person (merged_one_person) - a list for the ERP team to merge the
     records; a company partner sharing the hash with an individual partner stays apart (company_partner_not_merged).
   - ga4_pseudo_id_multiple_persons: one GA4 user_pseudo_id whose user_ids resolve to two or more persons
     (a shared browser; user_id -> person is 1:1 since user_id is the Odoo partner id). Pseudo id not linked.
   - trustpilot_reference_vs_referral_email: the order of the review's referenceId belongs to another person
     than its referral email. Linked by the reference (an explicit id beats an email). #}
with partners as (
    select partner_id, email_hash from {{ ref('stg_odoo__res_partners') }}
),

links as (
    select * from {{ ref('int_identity_links') }}
),

email_conflicts as (
    select
        'email_hash_on_multiple_odoo_partners' as conflict_type,
        'odoo' as source,
        cast(p.partner_id as {{ dbt.type_string() }}) as source_id,
        p.email_hash as evidence,
        c.partners as candidate_count,
        case when l.rule = 'company_partner_not_merged' then 'company_partner_not_merged'
             else 'merged_one_person' end as resolution
    from partners as p
    inner join (
        select email_hash, count(*) as partners
        from partners
        where email_hash is not null
        group by 1
        having count(*) > 1
    ) as c on c.email_hash = p.email_hash
    left join links as l on l.source = 'odoo' and l.source_id = cast(p.partner_id as {{ dbt.type_string() }})
),

pseudo_conflicts as (
    select
        'ga4_pseudo_id_multiple_persons' as conflict_type,
        'ga4_pseudo' as source,
        u.user_pseudo_id as source_id,
        {{ dbt.listagg('u.user_id', "','", 'order by u.user_id') }} as evidence,
        count(distinct g.person_id) as candidate_count,
        'not_linked' as resolution
    from (
        select distinct user_pseudo_id, user_id
        from {{ ref('int_ga4_identity_pairs') }}
        where user_id is not null and user_pseudo_id is not null
    ) as u
    inner join links as g on g.source = 'ga4' and g.source_id = u.user_id
    group by 3
    having count(distinct g.person_id) > 1
),

trustpilot_conflicts as (
    select distinct
        'trustpilot_reference_vs_referral_email' as conflict_type,
        'trustpilot' as source,
        r.review_id as source_id,
        r.reference_id as evidence,
        2 as candidate_count,
        'linked_by_reference_id' as resolution
    from {{ ref('stg_trustpilot__reviews') }} as r
    inner join links as t on t.source = 'trustpilot' and t.source_id = r.review_id
        and t.rule = 'trustpilot_reference_id_is_order_name'
    inner join links as e on e.source in ('odoo', 'hubspot') and e.rule = 'email_hash'
        and e.person_id = 'p_' || substr(r.referral_email_hash, 1, 20)
    where r.referral_email_hash is not null
        and e.person_id <> t.person_id
)

select * from email_conflicts
union all
select * from pseudo_conflicts
union all
select * from trustpilot_conflicts
