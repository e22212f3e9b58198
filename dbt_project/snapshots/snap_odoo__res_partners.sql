{# SCD2 history of the ERP customer record (Odoo res_partner, latest good version per load in staging).
   timestamp strategy on write_date; a partner that disappears from staging is invalidated (dbt_valid_to set).
   Only hashed PII is snapshotted; an erasure must delete the partner's rows here too. #}
{% snapshot snap_odoo__res_partners %}
{{ config(
    unique_key='partner_id',
    strategy='timestamp',
    updated_at='version_at',
    hard_deletes='invalidate',
) }}
select
    partner_id,
    email_hash,
    phone_hash,
    name_hash,
    country_id,
    city,
    partner_type,
    customer_rank,
    is_company,
    is_active,
    created_at,
    coalesce(updated_at, created_at) as version_at
from {{ ref('stg_odoo__res_partners') }}
-- a record deleted at the source leaves the query, so hard_deletes='invalidate' closes its open version
-- (dbt_valid_to = the snapshot run's time); a HubSpot record restored later comes back as a new version
where not is_deleted
{% endsnapshot %}
