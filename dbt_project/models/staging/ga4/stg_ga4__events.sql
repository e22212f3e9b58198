{# GA4 events: the current delivery of each export day, exact duplicates collapsed, params extracted - every event
   whose typed values parse in full (base_ga4__events_typed, incremental by export day, does the work once; an event
   with a present but unparsable value is in staging.quarantine instead, counted in staging.load_ledger). A view:
   a filter of the stored typed table, so it costs no second copy and is always equal to it. #}
{{ config(materialized='view') }}

select
    event_key, user_pseudo_id, user_id, ga_session_id, ga_session_number, event_name, page_location,
    device_category, country, engagement_time_msec, is_session_engaged, event_at, event_timestamp_us, event_date,
    export_date, _load_id, _record_seq, _extracted_at
from {{ ref('base_ga4__events_typed') }}
where quarantine_reason is null
