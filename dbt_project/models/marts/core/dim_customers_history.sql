{# SCD2 history of the customer records behind dim_customers: one row per version of an Odoo partner or HubSpot
   contact (dbt snapshots, timestamp strategy), with the person it resolves to today. valid_from / valid_to
   (exclusive, null = current) are the snapshot's dbt_valid_from / dbt_valid_to; a hard-deleted record keeps its
   versions with a closed valid_to (closed by the snapshot run that saw the delete) and is_record_deleted /
   record_deleted_detected_at (staging's flag, the load that proved it); a restored HubSpot contact gets a new
   current version. Re-running with no new data adds no versions. #}
with partners as (
    select
        'odoo' as source,
        cast(partner_id as {{ dbt.type_string() }}) as source_id,
        email_hash,
        phone_hash,
        name_hash,
        country_id,
        is_company,
        customer_rank,
        cast(null as {{ dbt.type_string() }}) as lifecycle_stage,
        is_active,
        dbt_scd_id,
        dbt_valid_from,
        dbt_valid_to
    from {{ ref('snap_odoo__res_partners') }}
),

contacts as (
    select
        'hubspot',
        contact_id,
        email_hash,
        phone_hash,
        name_hash,
        cast(null as bigint),
        false,
        cast(null as integer),
        lifecycle_stage,
        not coalesce(is_archived, false),
        dbt_scd_id,
        dbt_valid_from,
        dbt_valid_to
    from {{ ref('snap_hubspot__contacts') }}
),

versions as (
    select * from partners
    union all
    select * from contacts
)

select
    v.dbt_scd_id as customer_version_sk,
    coalesce(l.person_id, '-1') as person_sk,
    v.source,
    v.source_id,
    v.email_hash,
    v.phone_hash,
    v.name_hash,
    v.country_id,
    v.is_company,
    v.customer_rank,
    v.lifecycle_stage,
    v.is_active,
    v.dbt_valid_from as valid_from,
    v.dbt_valid_to as valid_to,
    v.dbt_valid_to is null as is_current,
    coalesce(d.is_deleted, false) as is_record_deleted,
    d.deleted_detected_at as record_deleted_detected_at
from versions as v
left join {{ ref('int_identity_links') }} as l
    on l.source = v.source and l.source_id = v.source_id
left join (
    select 'odoo' as source, cast(partner_id as {{ dbt.type_string() }}) as source_id, is_deleted, deleted_detected_at
    from {{ ref('stg_odoo__res_partners') }}
    where is_deleted
    union all
    select 'hubspot', contact_id, is_deleted, deleted_detected_at
    from {{ ref('stg_hubspot__contacts') }}
    where is_deleted
) as d
    on d.source = v.source and d.source_id = v.source_id
