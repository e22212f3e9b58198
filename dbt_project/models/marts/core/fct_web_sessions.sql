{# GA4 sessions: key (user_pseudo_id, ga_session_id); dated by the first event (one session across midnight).
   Engaged (kpi-definitions): session_engaged = '1' on any event, or duration > 10 s, or >= 2 page_view, or a key event.
   person_sk: the user_id seen in the session (ga4_user_id_is_odoo_partner_id), else the browser's person after a
   login in any session (ga4_pseudo_id_after_login), else '-1'.
   Incremental (delete+insert on session_key): a run recomputes, from all their events, the sessions that have an
   event at or after (latest stored session start - var web_session_lookback_days), plus stored sessions whose
   resolved person changed since (a later login); a post-hook deletes sessions whose events are gone (a
   re-delivered GA4 day replaced them). Equal to a full refresh (tests/dbt/test_marts_incremental.py). #}
{{ config(
    materialized='incremental',
    unique_key='session_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="delete from {{ this }} as t where not exists (select 1 from {{ ref('stg_ga4__events') }} as e where e.user_pseudo_id = t.user_pseudo_id and e.ga_session_id = t.ga_session_id)",
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
        max(case when event_name = '{{ var('cart_event') }}' then 1 else 0 end) = 1 as has_add_to_cart
    from events
    group by 1, 2
)

select
    s.user_pseudo_id || ':' || cast(s.ga_session_id as varchar) as session_key,
    s.*,
    coalesce(u.person_id, b.person_id, '-1') as person_sk,
    cast(s.session_start_at as date) as session_date,
    {{ seconds_between('s.session_start_at', 's.session_end_at') }} as duration_s,
    (s.has_session_engaged_flag
        or {{ seconds_between('s.session_start_at', 's.session_end_at') }} > {{ var('engaged_min_duration_s') }}
        or s.page_views >= {{ var('engaged_min_page_views') }}
        or s.has_key_event) as is_engaged
from sessions as s
left join links as u
    on u.source = 'ga4' and u.source_id = s.user_id
left join links as b
    on b.source = 'ga4_pseudo' and b.source_id = s.user_pseudo_id
