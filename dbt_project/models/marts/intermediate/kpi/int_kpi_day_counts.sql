{# Additive counts per day and KPI (numerator, denominator, n): the one place KPI formulas live.
   kpi_daily publishes them; kpi_period re-aggregates them by summing counts, never by averaging ratios.
   loop_closed_rate: the alerts of the alert rule int_detractor_alerts (the rows cx_detractor_alerts publishes) dated
   by the alert's creation (the feedback's submission / the review's creation), closed = is_loop_closed (an agent
   contact or ticket, or a review reply, before due_at). KPIs read the facts and intermediate models, never a
   presentation mart.
   open_backlog is a stock (int_kpi_open_backlog), not additive: it is not here. #}
with surveys as (
    select submitted_date as kpi_date, survey_type,
           count(*) as responses,
           sum(case when is_promoter then 1 else 0 end) as promoters,
           sum(case when is_detractor then 1 else 0 end) as detractors,
           sum(case when is_csat_satisfied then 1 else 0 end) as satisfied,
           sum(case when is_ces_easy then 1 else 0 end) as easy,
           sum(score) as score_sum,
           sum(score_normalised) as score_norm_sum
    from {{ ref('fct_survey_responses') }}
    group by 1, 2
),

reviews as (
    select created_date as kpi_date,
           count(*) as reviews,
           sum(rating) as stars,
           sum(case when is_negative then 1 else 0 end) as negative,
           sum(case when is_positive then 1 else 0 end) as positive,
           sum(case when has_reply then 1 else 0 end) as replied
    from {{ ref('fct_reviews') }}
    group by 1
),

sessions as (
    select session_date as kpi_date,
           count(*) as sessions,
           sum(case when is_engaged then 1 else 0 end) as engaged,
           sum(case when has_purchase then 1 else 0 end) as purchase_sessions,
           sum(case when has_add_to_cart then 1 else 0 end) as cart_sessions,
           sum(case when has_add_to_cart and not has_purchase then 1 else 0 end) as abandoned_sessions,
           sum(engagement_time_msec) as engagement_msec
    from {{ ref('fct_web_sessions') }}
    group by 1
),

orders as (
    select order_date as kpi_date,
           count(*) as orders,
           sum(amount_untaxed) as net_revenue,
           sum(amount_total) as gross_revenue
    from {{ ref('fct_orders') }}
    where is_confirmed
    group by 1
),

deliveries as (
    select done_date as kpi_date,
           count(*) as done,
           sum(case when is_on_time then 1 else 0 end) as on_time
    from {{ ref('fct_deliveries') }}
    where is_done
    group by 1
),

email as (
    select campaign_sent_date as kpi_date,
           sum(case when was_delivered then 1 else 0 end) as delivered,
           sum(case when was_delivered and was_opened then 1 else 0 end) as opened,
           sum(case when was_delivered and was_clicked then 1 else 0 end) as clicked,
           sum(case when was_delivered and has_unsubscribed then 1 else 0 end) as unsubscribed
    from {{ ref('fct_email_events') }}
    where was_sent
    group by 1
),

alerts as (
    select cast(created_at as date) as kpi_date,
           count(*) as alerts,
           sum(case when is_loop_closed then 1 else 0 end) as loop_closed
    from {{ ref('int_detractor_alerts') }}
    group by 1
),

unioned as (
    select kpi_date, 'nps' as kpi, cast(promoters - detractors as {{ type_double() }}) as numerator, cast(responses as {{ type_double() }}) as denominator, responses as n from surveys where survey_type = 'NPS'
    union all select kpi_date, 'csat_pct', satisfied, responses, responses from surveys where survey_type = 'CSAT'
    union all select kpi_date, 'csat_mean', score_sum, responses, responses from surveys where survey_type = 'CSAT'
    union all select kpi_date, 'ces_mean', score_norm_sum, responses, responses from surveys where survey_type = 'CES'
    union all select kpi_date, 'ces_easy_pct', easy, responses, responses from surveys where survey_type = 'CES'
    union all select kpi_date, 'review_rating_avg', stars, reviews, reviews from reviews
    union all select kpi_date, 'review_negative_share', negative, reviews, reviews from reviews
    union all select kpi_date, 'review_positive_share', positive, reviews, reviews from reviews
    union all select kpi_date, 'review_reply_rate', replied, reviews, reviews from reviews
    union all select kpi_date, 'sessions', sessions, null, sessions from sessions
    union all select kpi_date, 'engagement_rate', engaged, sessions, sessions from sessions
    union all select kpi_date, 'bounce_rate', sessions - engaged, sessions, sessions from sessions
    union all select kpi_date, 'conversion_rate', purchase_sessions, sessions, sessions from sessions
    union all select kpi_date, 'cart_abandonment_rate', abandoned_sessions, cart_sessions, cart_sessions from sessions
    union all select kpi_date, 'avg_engagement_time_msec', engagement_msec, sessions, sessions from sessions
    union all select kpi_date, 'orders', orders, null, orders from orders
    union all select kpi_date, 'net_revenue', net_revenue, null, orders from orders
    union all select kpi_date, 'gross_revenue', gross_revenue, null, orders from orders
    union all select kpi_date, 'aov', net_revenue, orders, orders from orders
    union all select kpi_date, 'on_time_delivery_rate', on_time, done, done from deliveries
    union all select kpi_date, 'email_open_rate', opened, delivered, delivered from email
    union all select kpi_date, 'email_click_rate', clicked, delivered, delivered from email
    union all select kpi_date, 'email_unsubscribe_rate', unsubscribed, delivered, delivered from email
    union all select kpi_date, 'email_click_to_open_rate', clicked, opened, opened from email
    union all select kpi_date, 'loop_closed_rate', loop_closed, alerts, alerts from alerts
)

select
    kpi_date,
    kpi,
    cast(numerator as {{ type_double() }}) as numerator,
    cast(denominator as {{ type_double() }}) as denominator,
    cast(n as bigint) as n
from unioned
where kpi_date is not null
    and {{ in_kpi_window('kpi_date') }}
