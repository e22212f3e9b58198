{# An association is deleted with either of its records (extractors/hubspot/README.md: associations of an archived
   record go with it): is_deleted / deleted_detected_at (the earlier end's detection). A restored record brings
   its associations back. #}
with source as (
    {{ ranked_good_rows('base_hubspot__associations', 'association_id', none) }}
),

renamed as (
    select
        association_id,
        from_type,
        from_id,
        to_type,
        to_id,
        association_type_id,
        association_label,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted_objects as (
    select 'contacts' as object_type, contact_id as object_id, deleted_detected_at
    from ({{ hubspot_deleted_keys('contacts', 'base_hubspot__contacts', 'contact_id') }}) as deleted_contacts
    union all
    select 'companies' as object_type, company_id as object_id, deleted_detected_at
    from ({{ hubspot_deleted_keys('companies', 'base_hubspot__companies', 'company_id') }}) as deleted_companies
    union all
    select 'deals' as object_type, deal_id as object_id, deleted_detected_at
    from ({{ hubspot_deleted_keys('deals', 'base_hubspot__deals', 'deal_id') }}) as deleted_deals
    union all
    select 'tickets' as object_type, ticket_id as object_id, deleted_detected_at
    from ({{ hubspot_deleted_keys('tickets', 'base_hubspot__tickets', 'ticket_id') }}) as deleted_tickets
    union all
    select 'feedback_submissions' as object_type, feedback_id as object_id, deleted_detected_at
    from ({{ hubspot_deleted_keys('feedback_submissions', 'base_hubspot__feedback_submissions', 'feedback_id') }}) as deleted_feedback_submissions
)

select
    r.*,
    f.object_id is not null or t.object_id is not null as is_deleted,
    case
        when f.deleted_detected_at is null then t.deleted_detected_at
        when t.deleted_detected_at is null then f.deleted_detected_at
        when t.deleted_detected_at < f.deleted_detected_at then t.deleted_detected_at
        else f.deleted_detected_at
    end as deleted_detected_at
from renamed as r
left join deleted_objects as f
    on f.object_type = r.from_type and f.object_id = r.from_id
left join deleted_objects as t
    on t.object_type = r.to_type and t.object_id = r.to_id
