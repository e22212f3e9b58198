{# GA4 sessions: key (user_pseudo_id, ga_session_id); dated by the first event (one session across midnight).
   Engaged (kpi-definitions): session_engaged = '1' on any event, or duration > 10 s, or >= 2 page_view, or a key event. #}
with events as (
    select *
    from {{ ref('stg_ga4__events') }}
    where user_pseudo_id is not null and ga_session_id is not null
),

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
    coalesce(l.person_id, '-1') as person_sk,
    cast(s.session_start_at as date) as session_date,
    {{ seconds_between('s.session_start_at', 's.session_end_at') }} as duration_s,
    (s.has_session_engaged_flag
        or {{ seconds_between('s.session_start_at', 's.session_end_at') }} > {{ var('engaged_min_duration_s') }}
        or s.page_views >= {{ var('engaged_min_page_views') }}
        or s.has_key_event) as is_engaged
from sessions as s
left join {{ ref('int_identity_links') }} as l
    on l.source = 'ga4' and l.source_id = s.user_id
