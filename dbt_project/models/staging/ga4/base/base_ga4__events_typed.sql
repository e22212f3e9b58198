{# GA4 events: the current (latest) delivery of each export day, exact duplicates collapsed, params extracted.
   Incremental (delete+insert on export_date): every row of an export day comes from that day's current delivery,
   so the table is a function of (export day -> current load). A run re-processes only the export days whose
   current load in raw (max _load_id of the day) differs from the load stored for that day (a new day, a
   re-delivered day), from all rows of that day; a post-hook drops days no longer in raw. Days are independent
   (dedup partitions by _export_date), so the result equals a full refresh whatever order loads arrive in
   (tests/dbt/test_staging_incremental.py; docs/DECISIONLOG.md "Incremental staging"). #}
{{ config(
    materialized='incremental',
    unique_key='export_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{% if is_incremental() %}{{ ga4_drop_vanished_export_days() }}{% endif %}",
) }}

with
{% if is_incremental() %}
changed_days as (
    {{ ga4_changed_export_days(source('ga4', 'events'), this) }}
),
{% endif %}

source as (
    select
        *,
        row_number() over (
            partition by _export_date, event_timestamp, event_name, user_pseudo_id, event_bundle_sequence_id,
                {{ value_fingerprint("event_params") }}
            order by _record_seq
        ) as _dup_rank
    from {{ ref('base_ga4__events') }}
    where is_current_delivery
    {% if is_incremental() %}
        and _export_date in (select _export_date from changed_days)
    {% endif %}
),

renamed as (
    select
        -- ids
        cast(_load_id as varchar) || ':' || cast(_record_seq as varchar) as event_key,
        nullif(cast(user_pseudo_id as varchar), '') as user_pseudo_id,
        nullif(cast(user_id as varchar), '') as user_id,
        {{ ga4_param_int('ga_session_id') }} as ga_session_id,
        {{ ga4_param_int('ga_session_number') }} as ga_session_number,
        -- strings
        lower(replace(trim(cast(event_name as varchar)), ' ', '_')) as event_name,
        {{ ga4_param_str('page_location') }} as page_location,
        cast({{ struct_field('device', 'category') }} as varchar) as device_category,
        cast({{ struct_field('geo', 'country') }} as varchar) as country,
        -- numerics / booleans
        coalesce({{ ga4_param_int('engagement_time_msec') }}, 0) as engagement_time_msec,
        coalesce({{ ga4_param_str('session_engaged') }} = '1', false)
            or coalesce({{ ga4_param_raw_int('session_engaged') }} = '1', false) as is_session_engaged,
        -- timestamps / dates
        {{ epoch_us_to_ts('event_timestamp') }} as event_at,
        {{ safe_cast_int('event_timestamp') }} as event_timestamp_us,
        {{ safe_to_date('event_date', '%Y%m%d') }} as event_date,
        cast(_export_date as varchar) as export_date,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _dup_rank = 1
)

select * from renamed
