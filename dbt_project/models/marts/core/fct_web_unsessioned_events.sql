{# GA4 rows lacking user_pseudo_id or ga_session_id (consent-mode pings): excluded from sessions, counted here. #}
select
    cast(event_at as date) as event_date,
    count(*) as events,
    sum(case when user_pseudo_id is null then 1 else 0 end) as events_without_user_pseudo_id,
    sum(case when ga_session_id is null then 1 else 0 end) as events_without_session_id
from {{ ref('stg_ga4__events') }}
where user_pseudo_id is null or ga_session_id is null
group by 1
