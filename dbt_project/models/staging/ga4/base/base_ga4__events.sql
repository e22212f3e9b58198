{# Every landed GA4 row, flagged: a re-delivered export day replaces the earlier delivery of that day
   (only the latest _load_id per _export_date is current); exact duplicate rows within it collapse to one.
   The daily table beats the intraday one (CXW_GA4_INTRADAY): once a delivery of events_YYYYMMDD is landed, no
   delivery of events_intraday_YYYYMMDD of that day is current, whatever the load order (macros/incremental_staging.sql
   ga4_delivery_key); the superseded intraday rows count as duplicates in staging.load_ledger. #}
with source as (
    select * from {{ source('ga4', 'events') }}
),

deliveries as (
    select
        *,
        {{ ga4_delivery_key(source('ga4', 'events')) }}
            = max({{ ga4_delivery_key(source('ga4', 'events')) }}) over (partition by _export_date)
            as is_current_delivery
    from source
)

select
    *,
    cast(null as varchar) as quarantine_reason
from deliveries
