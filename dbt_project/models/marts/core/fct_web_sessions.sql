{# GA4 sessions: key (user_pseudo_id, ga_session_id); dated by the first event (one session across midnight).
   Engaged (kpi-definitions): session_engaged = '1' on any event, or duration > 10 s, or >= 2 page_view, or a key event.
   person_sk: the user_id seen in the session (ga4_user_id_is_odoo_partner_id), else the browser's person after a
   login in any session (ga4_pseudo_id_after_login), else '-1'.
   Incremental (delete+insert on session_key): a run recomputes, from all their events, the sessions that have an
   event at or after (latest stored session start - var web_session_lookback_days), plus stored sessions whose
   resolved person changed since (a later login), plus - whatever the day's age - the sessions touched by a
   re-delivered GA4 export day (issue 14): stg_ga4__events holds one current load per export day, and every
   session stores first_export_load / last_export_load, the least and greatest '<export_date>/<_load_id>' of its
   events (a session spans at most two export days, so these are all its days' deliveries). A run recomputes the
   sessions with an event on a (day, load) that no stored session references (a new day or a new delivery of a
   day: it adds sessions or events to stored ones) and the stored sessions referencing a (day, load) that is no
   longer staged (the day was re-delivered without some of their events). Set-based on the deliveries, not a
   high-water mark, so exact whatever order loads arrive in; cost: one distinct (export_date, _load_id) over
   staging. A post-hook deletes sessions whose events are all gone. Stored rows without these columns (built
   before them; on_schema_change='append_new_columns' adds them as null) match no staged delivery, so the first
   run after the upgrade recomputes every session once. Equal to a full refresh
   (tests/dbt/test_marts_incremental.py, tests/dbt/test_web_sessions_redelivered_day.py). #}
{{ config(
    materialized=upsert_materialization(),
    unique_key='session_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    post_hook="{% if is_incremental() %}delete from {{ this }} as t where not exists (select 1 from {{ ref('stg_ga4__events') }} as e where e.user_pseudo_id = t.user_pseudo_id and e.ga_session_id = t.ga_session_id){% endif %}",
) }}

with links as (
    select source, source_id, person_id
    from {{ ref('int_identity_links') }}
    where source in ('ga4', 'ga4_pseudo')
),

all_events as (
    select *
    from {{ ref('stg_ga4__events') }}
    where user_pseudo_id is not null and ga_session_id is not null
),

{% if is_incremental() %}
{#- a table built before the delivery columns: they are appended after this query ran, so read them as null -#}
{%- set stored_cols = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list if execute else [] -%}
{%- set first_load = 't.first_export_load' if 'first_export_load' in stored_cols else 'cast(null as varchar)' -%}
{%- set last_load = 't.last_export_load' if 'last_export_load' in stored_cols else 'cast(null as varchar)' %}
staged_loads as (
    select export_date, _load_id, export_date || '/' || _load_id as export_load
    from (select distinct export_date, _load_id from {{ ref('stg_ga4__events') }}) as d
),

-- alias t: first_load / last_load read t.<column> when the stored table has it (sqlfluff sees the other branch)
stored_loads as (
    select {{ first_load }} as export_load from {{ this }} as t  -- noqa: AL05
    union
    select {{ last_load }} from {{ this }} as t  -- noqa: AL05
),

touched as (
    select distinct user_pseudo_id, ga_session_id
    from all_events
    where event_at >= (
        select {{ dbt.dateadd('day', -1 * var('web_session_lookback_days'), 'max(session_start_at)') }} from {{ this }}
    )
    union
    select t.user_pseudo_id, t.ga_session_id
    from {{ this }} as t
    left join links as u on u.source = 'ga4' and u.source_id = t.user_id
    left join links as b on b.source = 'ga4_pseudo' and b.source_id = t.user_pseudo_id
    where t.person_sk <> coalesce(u.person_id, b.person_id, '-1')
    union
    -- an export day's delivery no stored session was built from: a new day, or a re-delivered day of any age
    select e.user_pseudo_id, e.ga_session_id
    from all_events as e
    inner join staged_loads as l
        on l.export_date = e.export_date and l._load_id = e._load_id
    where not exists (select 1 from stored_loads as s where s.export_load = l.export_load)
    union
    -- stored sessions built from a delivery that is no longer staged (or stored before these columns: null)
    select t.user_pseudo_id, t.ga_session_id
    from {{ this }} as t
    where not exists (select 1 from staged_loads as l where l.export_load = {{ first_load }})
        or not exists (select 1 from staged_loads as l where l.export_load = {{ last_load }})
),

events as (
    select e.*
    from all_events as e
    inner join touched as t on t.user_pseudo_id = e.user_pseudo_id and t.ga_session_id = e.ga_session_id
),
{% else %}
events as (
    select * from all_events
),
{% endif %}

sessions as (
    select
        user_pseudo_id,
        ga_session_id,
        min(event_at) as session_start_at,
        max(event_at) as session_end_at,
        max(user_id) as user_id,
        count(*) as events,
        sum(case when event_name = 'page_view' then 1 else 0 end) as page_views,
        sum(engagement_time_msec) as engagement_time_msec,
        max(case when is_session_engaged then 1 else 0 end) = 1 as has_session_engaged_flag,
        max(case when event_name in ({{ "'" ~ var('key_events') | join("', '") ~ "'" }}) then 1 else 0 end) = 1 as has_key_event,
        max(case when event_name = '{{ var('conversion_event') }}' then 1 else 0 end) = 1 as has_purchase,
        max(case when event_name = '{{ var('cart_event') }}' then 1 else 0 end) = 1 as has_add_to_cart,
        min(export_date || '/' || _load_id) as first_export_load,
        max(export_date || '/' || _load_id) as last_export_load
    from events
    group by 1, 2
)

select
    s.user_pseudo_id || ':' || cast(s.ga_session_id as varchar) as session_key,
    s.user_pseudo_id,
    s.ga_session_id,
    s.session_start_at,
    s.session_end_at,
    s.user_id,
    s.events,
    s.page_views,
    s.engagement_time_msec,
    s.has_session_engaged_flag,
    s.has_key_event,
    s.has_purchase,
    s.has_add_to_cart,
    coalesce(u.person_id, b.person_id, '-1') as person_sk,
    cast(s.session_start_at as date) as session_date,
    {{ seconds_between('s.session_start_at', 's.session_end_at') }} as duration_s,
    (s.has_session_engaged_flag
        or {{ seconds_between('s.session_start_at', 's.session_end_at') }} > {{ var('engaged_min_duration_s') }}
        or s.page_views >= {{ var('engaged_min_page_views') }}
        or s.has_key_event) as is_engaged,
    -- last, so an upgraded table (columns appended) has the same column order as a new one
    s.first_export_load,
    s.last_export_load
from sessions as s
left join links as u
    on u.source = 'ga4' and u.source_id = s.user_id
left join links as b
    on b.source = 'ga4_pseudo' and b.source_id = s.user_pseudo_id
