{# SCD2 history of the CRM customer record (HubSpot contacts); timestamp strategy on updatedAt, hard deletes
   invalidated. Only hashed PII is snapshotted. #}
{% snapshot snap_hubspot__contacts %}
{{ config(
    unique_key='contact_id',
    strategy='timestamp',
    updated_at='version_at',
    hard_deletes='invalidate',
) }}
select
    contact_id,
    email_hash,
    phone_hash,
    name_hash,
    lifecycle_stage,
    is_archived,
    created_at,
    coalesce(updated_at, created_at) as version_at
from {{ ref('stg_hubspot__contacts') }}
-- a record deleted at the source leaves the query, so hard_deletes='invalidate' closes its open version
-- (dbt_valid_to = the snapshot run's time); a HubSpot record restored later comes back as a new version
where not is_deleted
{% endsnapshot %}
