{# cx_identity_coverage reconciles, per source: linked + unlinked = records; the outcome rows add up to the source's
   records; the linked rows equal the links of int_identity_links (rule by rule) and every link appears in
   cx_identity_link_audit; the records equal the source's records counted in staging. Returns the breaking rows. #}
with cov as (
    select * from {{ ref('cx_identity_coverage') }}
),

per_source as (
    select
        source,
        max(source_records) as source_records,
        max(source_linked) as source_linked,
        max(source_unlinked) as source_unlinked,
        sum(records) as sum_records,
        sum(case when outcome = 'linked' then records else 0 end) as sum_linked
    from cov
    group by 1
),

links as (
    select source, count(*) as links from {{ ref('int_identity_links') }} group by 1
),

audit as (
    select source, count(*) as links from {{ ref('cx_identity_link_audit') }} group by 1
),

ga4_ids as (
    select distinct user_id, user_pseudo_id from {{ ref('stg_ga4__events') }}
),

staged as (
    select 'odoo' as source, count(*) as n from {{ ref('stg_odoo__res_partners') }}
    union all select 'hubspot', count(*) from {{ ref('stg_hubspot__contacts') }}
    union all select 'ga4', count(distinct user_id) from ga4_ids
    union all select 'ga4_pseudo', count(distinct user_pseudo_id) from ga4_ids
    union all select 'trustpilot', count(*) from {{ ref('stg_trustpilot__reviews') }}
    union all select 'email_recipient', count(distinct recipient_hash) from {{ ref('stg_hubspot__email_events') }}
    union all select 'google_reviews', count(*) from {{ ref('stg_google_reviews__reviews') }}
),

rule_links as (
    select source, rule, count(*) as links from {{ ref('int_identity_links') }} group by 1, 2
)

select 'totals' as failure, s.source
from per_source as s
where s.source_linked + s.source_unlinked <> s.source_records
   or s.sum_records <> s.source_records
   or s.sum_linked <> s.source_linked
union all
select 'links_vs_coverage', coalesce(l.source, s.source)
from links as l
full outer join per_source as s on s.source = l.source
where coalesce(l.links, 0) <> coalesce(s.source_linked, 0)
union all
select 'links_vs_audit', coalesce(l.source, a.source)
from links as l
full outer join audit as a on a.source = l.source
where coalesce(l.links, 0) <> coalesce(a.links, 0)
union all
select 'staging_vs_coverage', st.source
from staged as st
left join per_source as s on s.source = st.source
where st.n <> coalesce(s.source_records, 0)
union all
select 'rule_vs_coverage', r.source
from rule_links as r
left join cov as c on c.source = r.source and c.outcome = 'linked' and c.rule = r.rule
where r.links <> coalesce(c.records, 0)
