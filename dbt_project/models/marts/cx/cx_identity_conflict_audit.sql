{# Identity conflicts for analysts (issue 19 point 7): one row per record with ambiguous identity evidence
   (int_identity_conflicts), the rule that won, the rule that lost and why. evidence holds an e-mail hash or an order
   name (null for a shared browser). person_sk: the person the record is linked to (null when not linked). #}
with conflicts as (
    select * from {{ ref('int_identity_conflicts') }}
),

links as (
    select * from {{ ref('int_identity_links') }}
)

select
    c.conflict_type || ':' || c.source || ':' || c.source_id as conflict_key,
    c.conflict_type,
    c.source,
    c.source_id as source_record_id,
    -- a shared browser's evidence (the list of its Odoo partner ids) is not published: erasure rewrites kept
    -- generations by whole key values (person_sk, hashes), which a list would escape; candidate_count says how many
    case when c.conflict_type = 'ga4_pseudo_id_multiple_persons' then null else c.evidence end as evidence,
    c.candidate_count,
    c.resolution,
    l.person_id as person_sk,
    l.rule as applied_rule,
    case c.resolution
        when 'merged_one_person' then 'email_hash'
        when 'company_partner_not_merged' then 'company_partner_not_merged'
        when 'linked_by_reference_id' then 'trustpilot_reference_id_is_order_name'
    end as winning_rule,
    case c.resolution
        when 'merged_one_person' then 'erp_partner_is_person'
        when 'company_partner_not_merged' then 'email_hash'
        when 'not_linked' then 'ga4_pseudo_id_after_login'
        when 'linked_by_reference_id' then 'trustpilot_referral_email'
    end as losing_rule,
    case c.resolution
        when 'merged_one_person' then
            'one normalised e-mail hash on ' || cast(c.candidate_count as {{ dbt.type_string() }})
            || ' Odoo partners: duplicate ERP records of one person, merged (merge them in the ERP)'
        when 'company_partner_not_merged' then
            'a company partner shares the e-mail hash of an individual partner: a company is not a person, kept apart'
        when 'not_linked' then
            'the browser''s user_ids resolve to ' || cast(c.candidate_count as {{ dbt.type_string() }})
            || ' persons (a shared device): linked to none'
        when 'linked_by_reference_id' then
            'the order of the referenceId belongs to another person than the referral e-mail: an explicit order id '
            || 'beats an e-mail'
    end as reason
from conflicts as c
left join links as l on l.source = c.source and l.source_id = c.source_id
