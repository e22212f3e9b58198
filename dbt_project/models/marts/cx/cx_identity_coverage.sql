{# Identity coverage per source (issue 19 point 7): every record that could carry a person, linked by which rule or
   why not, one row per source and outcome. Records per source: Odoo partners and HubSpot contacts (staging, deleted
   ones included, as in int_identity_links), distinct GA4 user_ids and user_pseudo_ids, Trustpilot reviews, distinct
   marketing e-mail recipient hashes, Google reviews (no identifier the graph could use: never linked).
   Unlinked reasons: ambiguous_evidence (listed in cx_identity_conflict_audit, e.g. a shared browser),
   no_identifier_in_source (Google reviews), no_matching_evidence (an anonymous browser, a user_id that is no Odoo
   partner, a review or recipient whose reference / e-mail hash matches nobody).
   Per source: sum(records) = source_records and source_linked + source_unlinked = source_records
   (data-tests/assert_identity_coverage_reconciles.sql). #}
with ga4_ids as (
    select distinct user_id, user_pseudo_id
    from {{ ref('int_ga4_identity_pairs') }}
),

records as (
    select 'odoo' as source, cast(partner_id as {{ dbt.type_string() }}) as source_id
    from {{ ref('stg_odoo__res_partners') }}
    union all
    select 'hubspot', contact_id from {{ ref('stg_hubspot__contacts') }}
    union all
    select distinct 'ga4', user_id from ga4_ids where user_id is not null
    union all
    select distinct 'ga4_pseudo', user_pseudo_id from ga4_ids where user_pseudo_id is not null
    union all
    select 'trustpilot', review_id from {{ ref('stg_trustpilot__reviews') }}
    union all
    select distinct 'email_recipient', recipient_hash
    from {{ ref('stg_hubspot__email_events') }}
    where recipient_hash is not null
    union all
    select 'google_reviews', review_id from {{ ref('stg_google_reviews__reviews') }}
),

conflicts as (
    select distinct source, source_id
    from {{ ref('int_identity_conflicts') }}
    where resolution = 'not_linked'
),

outcomes as (
    select
        r.source,
        case when l.rule is not null then 'linked' else 'unlinked' end as outcome,
        case when l.rule is not null then l.rule
             when c.source_id is not null then 'ambiguous_evidence'
             when r.source = 'google_reviews' then 'no_identifier_in_source'
             else 'no_matching_evidence' end as rule
    from records as r
    left join {{ ref('int_identity_links') }} as l on l.source = r.source and l.source_id = r.source_id
    left join conflicts as c on c.source = r.source and c.source_id = r.source_id
),

counted as (
    select source, outcome, rule, count(*) as records
    from outcomes
    group by 1, 2, 3
),

totals as (
    select
        source,
        sum(records) as source_records,
        sum(case when outcome = 'linked' then records else 0 end) as source_linked,
        sum(case when outcome = 'unlinked' then records else 0 end) as source_unlinked
    from counted
    group by 1
)

select
    c.source || ':' || c.rule as coverage_key,
    c.source,
    c.outcome,
    c.rule,
    c.records,
    t.source_records,
    t.source_linked,
    t.source_unlinked,
    cast(c.records as double precision) / t.source_records as share_of_source,
    cast(t.source_linked as double precision) / t.source_records as source_linked_share
from counted as c
inner join totals as t on t.source = c.source
