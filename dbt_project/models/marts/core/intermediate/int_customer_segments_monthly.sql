{# Segment (persona) of every resolved person as of each month end (docs/segments.md). One row per person and
   month from the person's first activity month to the last month with any activity; as_of_date = the month's last
   day. Every input counts only events dated on or before as_of_date (rolling windows over the dense month grid:
   ROWS frames, portable to PostgreSQL and Spark), so a row never sees data after its as-of date.
   Activity: confirmed orders (value: recency, frequency, monetary; channel mix), support tickets opened, engagement
   (web sessions, e-mail opens and clicks, survey responses, reviews). The rules and their order are the seed
   customer_segments; the thresholds are the vars segment_* (dbt_project.yml). First matching rule wins.
   Persons only (person_sk <> '-1'); company partners are segmented like persons (their KPIs exclude them, not this). #}
{%- set value_rows = [var('segment_value_months') | int - 1, 0] | max -%}
{%- set recent_rows = [var('segment_recent_months') | int - 1, 0] | max -%}
with teams as (
    select team_id, team_name from {{ ref('stg_odoo__crm_teams') }}
),

orders as (
    select
        o.person_sk,
        o.order_date as activity_date,
        1 as orders,
        cast(o.amount_untaxed as {{ type_double() }}) as net_revenue,
        case when coalesce({{ order_channel_sk('t.team_name') }}, 'online_store') = 'online_store' then 1 else 0 end as online_orders,
        0 as tickets,
        0 as engagement_events
    from {{ ref('fct_orders') }} as o
    left join teams as t on t.team_id = o.team_id
    where o.is_confirmed and o.order_date is not null
),

tickets as (
    select person_sk, created_date, 0, cast(0 as {{ type_double() }}), 0, 1, 0
    from {{ ref('fct_support_tickets') }}
    where created_date is not null
),

engagement as (
    select person_sk, session_date as activity_date from {{ ref('fct_web_sessions') }}
    union all
    select person_sk, cast(first_opened_at as date) from {{ ref('fct_email_events') }} where first_opened_at is not null
    union all
    select person_sk, cast(first_clicked_at as date) from {{ ref('fct_email_events') }} where first_clicked_at is not null
    union all
    select person_sk, submitted_date from {{ ref('fct_survey_responses') }}
    union all
    select person_sk, created_date from {{ ref('fct_reviews') }}
),

activity as (
    select * from orders
    union all
    select * from tickets
    union all
    select person_sk, activity_date, 0, cast(0 as {{ type_double() }}), 0, 0, 1
    from engagement
    where activity_date is not null
),

person_months as (
    select
        person_sk,
        cast({{ dbt.date_trunc('month', 'activity_date') }} as date) as month_start,
        sum(orders) as orders,
        sum(net_revenue) as net_revenue,
        sum(online_orders) as online_orders,
        sum(tickets) as tickets,
        sum(engagement_events) as engagement_events,
        min(case when orders = 1 then activity_date end) as first_order_date,
        max(case when orders = 1 then activity_date end) as last_order_date
    from activity
    where person_sk <> '-1'
    group by 1, 2
),

bounds as (
    select person_sk, min(month_start) as first_month from person_months group by 1
),

months as (
    select distinct d.month_start
    from {{ ref('dim_dates') }} as d
    where d.month_start <= (select max(month_start) from person_months)
),

-- the dense grid: every person, every month from its first activity month to the last month of data
grid as (
    select b.person_sk, m.month_start
    from bounds as b
    inner join months as m on m.month_start >= b.first_month
),

rolled as (
    select
        g.person_sk,
        g.month_start,
        cast({{ dbt.last_day('g.month_start', 'month') }} as date) as as_of_date,
        min(pm.first_order_date) over (partition by g.person_sk order by g.month_start
                                       rows between unbounded preceding and current row) as first_order_date,
        max(pm.last_order_date) over (partition by g.person_sk order by g.month_start
                                      rows between unbounded preceding and current row) as last_order_date,
        sum(coalesce(pm.orders, 0)) over (partition by g.person_sk order by g.month_start
                                          rows between unbounded preceding and current row) as orders_total,
        sum(coalesce(pm.orders, 0)) over (partition by g.person_sk order by g.month_start
                                          rows between {{ value_rows }} preceding and current row) as orders_value_window,
        sum(coalesce(pm.net_revenue, 0)) over (partition by g.person_sk order by g.month_start
                                               rows between {{ value_rows }} preceding and current row) as net_revenue_value_window,
        sum(coalesce(pm.online_orders, 0)) over (partition by g.person_sk order by g.month_start
                                                 rows between {{ value_rows }} preceding and current row) as online_orders_value_window,
        sum(coalesce(pm.tickets, 0)) over (partition by g.person_sk order by g.month_start
                                           rows between {{ recent_rows }} preceding and current row) as tickets_recent,
        sum(coalesce(pm.engagement_events, 0)) over (partition by g.person_sk order by g.month_start
                                                     rows between {{ recent_rows }} preceding and current row) as engagement_events_recent
    from grid as g
    left join person_months as pm on pm.person_sk = g.person_sk and pm.month_start = g.month_start
),

measured as (
    select
        *,
        {{ dbt.datediff('last_order_date', 'as_of_date', 'day') }} as recency_days,
        {{ dbt.datediff('first_order_date', 'as_of_date', 'day') }} as days_since_first_order,
        case when orders_value_window > 0
             then cast(online_orders_value_window as {{ type_double() }}) / orders_value_window end as online_order_share
    from rolled
)

select
    person_sk,
    month_start,
    as_of_date,
    case
        when tickets_recent >= {{ var('segment_support_heavy_min_tickets') }} then 'support_heavy'
        when first_order_date is null then 'prospect'
        when days_since_first_order <= {{ var('segment_new_days') }} then 'new'
        when recency_days <= {{ var('segment_active_days') }}
            and orders_value_window >= {{ var('segment_champion_min_orders') }}
            and net_revenue_value_window >= {{ var('segment_champion_min_revenue') }} then 'champions'
        when recency_days <= {{ var('segment_lapsing_days') }}
            and orders_value_window >= {{ var('segment_loyal_min_orders') }} then 'loyal'
        when recency_days <= {{ var('segment_lapsing_days') }} then 'occasional'
        when recency_days <= {{ var('segment_hibernating_days') }}
            or engagement_events_recent >= {{ var('segment_engaged_min_events') }} then 'at_risk'
        else 'hibernating'
    end as segment,
    first_order_date,
    last_order_date,
    recency_days,
    orders_total,
    orders_value_window,
    net_revenue_value_window,
    online_order_share,
    tickets_recent,
    engagement_events_recent
from measured
