{# Identity audit for analysts (issue 19 point 7): one row per identity link of int_identity_links - which source
   record was linked to which person by which deterministic rule, from which load. Pseudonymised: the record ids are
   the sources' own keys (Odoo partner id, HubSpot contact id, GA4 user_id / user_pseudo_id, Trustpilot review id) or
   a salted hash (email_recipient); no e-mail, phone or name. Unlinked records and the share linked per source are in
   cx_identity_coverage; ambiguous evidence and the rule that lost in cx_identity_conflict_audit. #}
with links as (
    select * from {{ ref('int_identity_links') }}
),

conflicts as (
    select source, source_id, min(conflict_type) as conflict_type
    from {{ ref('int_identity_conflicts') }}
    group by 1, 2
),

ga4_ids as (
    select user_id, user_pseudo_id, min(_load_id) as _load_id, min(_extracted_at) as _extracted_at
    from {{ ref('int_ga4_identity_pairs') }}
    where user_id is not null
    group by 1, 2
),

-- the load that brought the evidence: the first load of the record's current version, or the first load carrying
-- the id / hash
evidence as (
    select 'odoo' as source, source_id, _load_id, _extracted_at
    from ({{ first_load_of_current_version('base_odoo__res_partners', 'partner_id', 'updated_at') }}) as o
    union all
    select 'hubspot', source_id, _load_id, _extracted_at
    from ({{ first_load_of_current_version('base_hubspot__contacts', 'contact_id', 'updated_at') }}) as h
    union all
    select 'ga4', user_id, min(_load_id), min(_extracted_at)
    from ga4_ids
    group by 2
    union all
    select 'ga4_pseudo', user_pseudo_id, min(_load_id), min(_extracted_at)
    from ga4_ids
    where user_pseudo_id is not null
    group by 2
    union all
    select 'trustpilot', source_id, _load_id, _extracted_at
    from ({{ first_load_of_current_version('base_trustpilot__reviews', 'review_id', 'version_at') }}) as t
    union all
    select 'email_recipient', recipient_hash, min(_load_id), min(_extracted_at)
    from {{ ref('stg_hubspot__email_events') }}
    where recipient_hash is not null
    group by 2
),

per_person as (
    select
        l.*,
        count(*) over (partition by l.person_id, l.source) as same_source_records,
        count(*) over (partition by l.person_id) as person_records
    from links as l
)

select
    l.source || ':' || l.source_id as link_key,
    l.source,
    l.source_id as source_record_id,
    l.person_id as person_sk,
    l.rule,
    case l.rule
        when 'email_hash' then 'normalised e-mail hash (trim, lower, ss) equal'
        when 'company_partner_not_merged' then 'company partner sharing an individual''s e-mail hash: kept apart'
        when 'no_email' then 'no e-mail: a person of its own'
        when 'ga4_user_id_is_odoo_partner_id' then 'GA4 user_id equals the Odoo partner id (set at login)'
        when 'ga4_pseudo_id_after_login' then 'browser id seen with the user_id of exactly one person'
        when 'trustpilot_reference_id_is_order_name' then 'Trustpilot referenceId equals the Odoo order name'
        when 'trustpilot_referral_email' then 'Trustpilot referral e-mail hash equals a person''s e-mail hash'
        when 'email_recipient_hash' then 'marketing e-mail recipient hash equals a person''s e-mail hash'
    end as rule_evidence,
    l.same_source_records,
    l.person_records,
    c.conflict_type is not null as has_conflict,
    c.conflict_type,
    e._load_id as evidence_load_id,
    e._extracted_at as evidence_extracted_at
from per_person as l
left join conflicts as c on c.source = l.source and c.source_id = l.source_id
left join evidence as e on e.source = l.source and e.source_id = l.source_id
