{# Every landed GA4 row, flagged: a re-delivered export day replaces the earlier delivery of that day
   (only the latest _load_id per _export_date is current); exact duplicate rows within it collapse to one. #}
with source as (
    select * from {{ source('ga4', 'events') }}
),

deliveries as (
    select
        *,
        _load_id = max(_load_id) over (partition by _export_date) as is_current_delivery
    from source
)

select
    *,
    cast(null as varchar) as quarantine_reason
from deliveries
