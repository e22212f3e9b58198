{# GA4 events typed: the current (latest) delivery of each export day, exact duplicates collapsed, params extracted,
   each typed value checked (issue 15): a value that is present but does not parse in full (event_timestamp,
   event_date, the int params ga_session_id / ga_session_number / engagement_time_msec, session_engaged other than
   '0' / '1'; a double the extractor could not type, named in _type_error_fields) gives quarantine_reason
   'unparsable_value: <fields>', an event_timestamp outside years 0001-9999 'out_of_range: event_timestamp';
   stg_ga4__events holds the rows without one, the
   quarantine the others (macros/staging_helpers.sql unparsable_fields). An ABSENT value keeps its meaning: no
   engagement_time_msec = 0, no ga_session_id = a cookieless consent ping (no session).
   The typing is done once per row, here, and stored: the quarantine and stg_ga4__events read this table (a filter on
   quarantine_reason) instead of parsing the params of every event again on each run.
   Incremental (delete+insert on export_date): every row of an export day comes from that day's current delivery,
   so the table is a function of (export day -> current load). A run re-processes only the export days whose
   current load in raw (max _load_id of the day) differs from the load stored for that day (a new day, a
   re-delivered day), from all rows of that day; a post-hook drops days no longer in raw. Days are independent
   (dedup partitions by _export_date), so the result equals a full refresh whatever order loads arrive in
   (tests/dbt/test_staging_incremental.py; docs/DECISIONLOG.md "Incremental staging"). #}
{{ config(
    materialized=upsert_materialization(),
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
        {#- each param read once, as delivered: PostgreSQL evaluates a jsonpath per reference, and this subquery
            (a window function) is not pulled up into the next one #}
        {#- the int params' whole value, so one delivered in another value field is read (ga4_param_any_field) #}
        {{ ga4_param_value('event_params', 'ga_session_id') }} as _v_ga_session_id,
        {{ ga4_param_value('event_params', 'ga_session_number') }} as _v_ga_session_number,
        {{ ga4_param_value('event_params', 'engagement_time_msec') }} as _v_engagement_time_msec,
        {{ ga4_param('event_params', 'session_engaged', 'string_value') }} as _p_session_engaged_str,
        {{ ga4_param('event_params', 'session_engaged', 'int_value') }} as _p_session_engaged_int,
        {{ safe_cast_int('event_timestamp') }} as _p_event_timestamp_us,
        {#- the extractor's line path names the fields of a value it could not type (a double '1,5') #}
        {{ type_error_fields('ga4', 'events') }} as _p_type_error_fields,
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

params as (
    select
        *,
        {{ ga4_param_any_field('_v_ga_session_id', 'int_value') }} as _p_ga_session_id,
        {{ ga4_param_any_field('_v_ga_session_number', 'int_value') }} as _p_ga_session_number,
        {{ ga4_param_any_field('_v_engagement_time_msec', 'int_value') }} as _p_engagement_time_msec
    from source
    where _dup_rank = 1
),

renamed as (
    select
        -- ids
        cast(_load_id as varchar) || ':' || cast(_record_seq as varchar) as event_key,
        nullif(cast(user_pseudo_id as varchar), '') as user_pseudo_id,
        nullif(cast(user_id as varchar), '') as user_id,
        {{ safe_cast_int('_p_ga_session_id') }} as ga_session_id,
        {{ safe_cast_int('_p_ga_session_number') }} as ga_session_number,
        -- strings
        lower(replace(trim(cast(event_name as varchar)), ' ', '_')) as event_name,
        {{ ga4_param_str('page_location') }} as page_location,
        cast({{ struct_field('device', 'category') }} as varchar) as device_category,
        cast({{ struct_field('geo', 'country') }} as varchar) as country,
        -- numerics / booleans
        coalesce({{ safe_cast_int('_p_engagement_time_msec') }}, 0) as engagement_time_msec,
        coalesce(_p_session_engaged_str = '1', false)
            or coalesce(_p_session_engaged_int = '1', false) as is_session_engaged,
        -- timestamps / dates
        {{ epoch_us_to_ts('_p_event_timestamp_us', is_int=true) }} as event_at,
        _p_event_timestamp_us as event_timestamp_us,
        {{ safe_to_date('event_date', '%Y%m%d') }} as event_date,
        cast(_export_date as varchar) as export_date,
        -- present but not parsable in full (absent values are not checked: they keep the defaults above)
        {{ unparsable_fields([
            ('event_timestamp', 'event_timestamp', '_p_event_timestamp_us'),
            ('event_date', 'event_date', safe_to_date('event_date', '%Y%m%d')),
            ('ga_session_id', '_p_ga_session_id', safe_cast_int('_p_ga_session_id')),
            ('ga_session_number', '_p_ga_session_number', safe_cast_int('_p_ga_session_number')),
            ('engagement_time_msec', '_p_engagement_time_msec', safe_cast_int('_p_engagement_time_msec')),
            ('session_engaged', "coalesce(nullif(trim(_p_session_engaged_str), ''), _p_session_engaged_int)",
             "case when coalesce(nullif(trim(_p_session_engaged_str), ''), '0') in ('0', '1')
                        and coalesce(nullif(trim(_p_session_engaged_int), ''), '0') in ('0', '1') then true end"),
        ]) }} as _unparsable,
        {#- an integer outside years 0001-9999 (epoch_us_to_ts): never a failed build #}
        {{ out_of_range_fields([('event_timestamp', '_p_event_timestamp_us',
                                 epoch_us_to_ts('_p_event_timestamp_us', is_int=true))]) }} as _out_of_range,
        _p_type_error_fields as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from params
)

select
    event_key, user_pseudo_id, user_id, ga_session_id, ga_session_number, event_name, page_location,
    device_category, country, engagement_time_msec, is_session_engaged, event_at, event_timestamp_us, event_date,
    export_date, _load_id, _record_seq, _extracted_at,
    case when _type_error_fields is not null or _unparsable is not null
         then 'unparsable_value: ' || concat_ws(',', _type_error_fields, _unparsable)
         when _out_of_range is not null then 'out_of_range: ' || _out_of_range end as quarantine_reason
from renamed
