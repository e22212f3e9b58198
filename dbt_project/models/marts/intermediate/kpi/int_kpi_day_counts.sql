{# Additive counts per day and KPI (numerator, denominator, n): the one place KPI formulas live.
   kpi_daily publishes them; kpi_period re-aggregates them by summing counts, never by averaging ratios.
   loop_closed_rate: the alerts of the alert rule int_detractor_alerts (the rows cx_detractor_alerts publishes) dated
   by the alert's creation (the feedback's submission / the review's creation), closed = is_loop_closed (an agent
   contact or ticket, or a review reply, before due_at). KPIs read the facts and intermediate models, never a
   presentation mart.
   open_backlog is a stock (int_kpi_open_backlog), not additive: it is not here.
   Segment and channel (issue 19.1, docs/segments.md): every count is grouped by grouping sets - the day (segment
   = channel = 'all': the same counts as before segments existed), the day x segment (channel 'all') and the day x
   channel (segment 'all'), never segment x channel. segment = the person's segment as of the fact's date
   (dim_customer_segments: valid_from <= date < valid_to, computed from data up to the month end before), 'new'
   for a person without a month end yet, 'unresolved' for person_sk '-1'. channel = the dim_channels code the
   fact came through: survey (its HubSpot channel, macro survey_channel_sk, else survey), review_site, web,
   order (online_store / sales_team, macro order_channel_sk), delivery, email, alert (its feedback's channel). The
   segment rows of a day sum to its 'all' row, and so do its channel rows (data test assert_segment_and_channel_rows_reaggregate_to_all, tests/dbt/test_dbt_fixture.py). #}
{%- set dims = "grouping sets ((kpi_date{k}), (kpi_date{k}, segment), (kpi_date{k}, channel))" -%}
with segments as (
    select person_sk, segment, valid_from, valid_to from {{ ref('dim_customer_segments') }}
),

survey_rows as (
    select
        f.submitted_date as kpi_date,
        f.survey_type,
        {{ segment_as_of('f.person_sk', 'f.submitted_date') }} as segment,
        coalesce({{ survey_channel_sk('f.survey_channel') }}, 'survey') as channel,
        f.is_promoter, f.is_detractor, f.is_csat_satisfied, f.is_ces_easy, f.score, f.score_normalised
    from {{ ref('fct_survey_responses') }} as f
    {{ join_segment_as_of('f.person_sk', 'f.submitted_date') }}
),

surveys as (
    select kpi_date, survey_type, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as responses,
           sum(case when is_promoter then 1 else 0 end) as promoters,
           sum(case when is_detractor then 1 else 0 end) as detractors,
           sum(case when is_csat_satisfied then 1 else 0 end) as satisfied,
           sum(case when is_ces_easy then 1 else 0 end) as easy,
           sum(score) as score_sum,
           sum(score_normalised) as score_norm_sum
    from survey_rows
    group by {{ dims.format(k=', survey_type') }}
),

review_rows as (
    select r.created_date as kpi_date, {{ segment_as_of('r.person_sk', 'r.created_date') }} as segment,
           'review_site' as channel, r.rating, r.is_negative, r.is_positive, r.has_reply
    from {{ ref('fct_reviews') }} as r
    {{ join_segment_as_of('r.person_sk', 'r.created_date') }}
),

reviews as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as reviews,
           sum(rating) as stars,
           sum(case when is_negative then 1 else 0 end) as negative,
           sum(case when is_positive then 1 else 0 end) as positive,
           sum(case when has_reply then 1 else 0 end) as replied
    from review_rows
    group by {{ dims.format(k='') }}
),

session_rows as (
    select w.session_date as kpi_date, {{ segment_as_of('w.person_sk', 'w.session_date') }} as segment,
           'web' as channel, w.is_engaged, w.has_purchase, w.has_add_to_cart, w.engagement_time_msec
    from {{ ref('fct_web_sessions') }} as w
    {{ join_segment_as_of('w.person_sk', 'w.session_date') }}
),

sessions as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as sessions,
           sum(case when is_engaged then 1 else 0 end) as engaged,
           sum(case when has_purchase then 1 else 0 end) as purchase_sessions,
           sum(case when has_add_to_cart then 1 else 0 end) as cart_sessions,
           sum(case when has_add_to_cart and not has_purchase then 1 else 0 end) as abandoned_sessions,
           sum(engagement_time_msec) as engagement_msec
    from session_rows
    group by {{ dims.format(k='') }}
),

order_rows as (
    select o.order_date as kpi_date, {{ segment_as_of('o.person_sk', 'o.order_date') }} as segment,
           coalesce({{ order_channel_sk('t.team_name') }}, 'online_store') as channel, o.amount_untaxed, o.amount_total
    from {{ ref('fct_orders') }} as o
    left join {{ ref('stg_odoo__crm_teams') }} as t on t.team_id = o.team_id
    {{ join_segment_as_of('o.person_sk', 'o.order_date') }}
    where o.is_confirmed
),

orders as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as orders,
           sum(amount_untaxed) as net_revenue,
           sum(amount_total) as gross_revenue
    from order_rows
    group by {{ dims.format(k='') }}
),

delivery_rows as (
    select d.done_date as kpi_date, {{ segment_as_of('d.person_sk', 'd.done_date') }} as segment,
           'delivery' as channel, d.is_on_time
    from {{ ref('fct_deliveries') }} as d
    {{ join_segment_as_of('d.person_sk', 'd.done_date') }}
    where d.is_done
),

deliveries as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as done,
           sum(case when is_on_time then 1 else 0 end) as on_time
    from delivery_rows
    group by {{ dims.format(k='') }}
),

email_rows as (
    select e.campaign_sent_date as kpi_date, {{ segment_as_of('e.person_sk', 'e.campaign_sent_date') }} as segment,
           'email' as channel, e.was_delivered, e.was_opened, e.was_clicked, e.has_unsubscribed
    from {{ ref('fct_email_events') }} as e
    {{ join_segment_as_of('e.person_sk', 'e.campaign_sent_date') }}
    where e.was_sent
),

email as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           sum(case when was_delivered then 1 else 0 end) as delivered,
           sum(case when was_delivered and was_opened then 1 else 0 end) as opened,
           sum(case when was_delivered and was_clicked then 1 else 0 end) as clicked,
           sum(case when was_delivered and has_unsubscribed then 1 else 0 end) as unsubscribed
    from email_rows
    group by {{ dims.format(k='') }}
),

alert_rows as (
    select cast(a.created_at as date) as kpi_date,
           {{ segment_as_of('a.person_sk', 'cast(a.created_at as date)') }} as segment,
           coalesce(a.channel, 'unknown') as channel, a.is_loop_closed
    from {{ ref('int_detractor_alerts') }} as a
    {{ join_segment_as_of('a.person_sk', 'cast(a.created_at as date)') }}
),

alerts as (
    select kpi_date, coalesce(segment, 'all') as segment, coalesce(channel, 'all') as channel,
           count(*) as alerts,
           sum(case when is_loop_closed then 1 else 0 end) as loop_closed
    from alert_rows
    group by {{ dims.format(k='') }}
),

unioned as (
    select kpi_date, segment, channel, 'nps' as kpi, cast(promoters - detractors as {{ type_double() }}) as numerator, cast(responses as {{ type_double() }}) as denominator, responses as n from surveys where survey_type = 'NPS'
    union all select kpi_date, segment, channel, 'csat_pct', satisfied, responses, responses from surveys where survey_type = 'CSAT'
    union all select kpi_date, segment, channel, 'csat_mean', score_sum, responses, responses from surveys where survey_type = 'CSAT'
    union all select kpi_date, segment, channel, 'ces_mean', score_norm_sum, responses, responses from surveys where survey_type = 'CES'
    union all select kpi_date, segment, channel, 'ces_easy_pct', easy, responses, responses from surveys where survey_type = 'CES'
    union all select kpi_date, segment, channel, 'review_rating_avg', stars, reviews, reviews from reviews
    union all select kpi_date, segment, channel, 'review_negative_share', negative, reviews, reviews from reviews
    union all select kpi_date, segment, channel, 'review_positive_share', positive, reviews, reviews from reviews
    union all select kpi_date, segment, channel, 'review_reply_rate', replied, reviews, reviews from reviews
    union all select kpi_date, segment, channel, 'sessions', sessions, null, sessions from sessions
    union all select kpi_date, segment, channel, 'engagement_rate', engaged, sessions, sessions from sessions
    union all select kpi_date, segment, channel, 'bounce_rate', sessions - engaged, sessions, sessions from sessions
    union all select kpi_date, segment, channel, 'conversion_rate', purchase_sessions, sessions, sessions from sessions
    union all select kpi_date, segment, channel, 'cart_abandonment_rate', abandoned_sessions, cart_sessions, cart_sessions from sessions
    union all select kpi_date, segment, channel, 'avg_engagement_time_msec', engagement_msec, sessions, sessions from sessions
    union all select kpi_date, segment, channel, 'orders', orders, null, orders from orders
    union all select kpi_date, segment, channel, 'net_revenue', net_revenue, null, orders from orders
    union all select kpi_date, segment, channel, 'gross_revenue', gross_revenue, null, orders from orders
    union all select kpi_date, segment, channel, 'aov', net_revenue, orders, orders from orders
    union all select kpi_date, segment, channel, 'on_time_delivery_rate', on_time, done, done from deliveries
    union all select kpi_date, segment, channel, 'email_open_rate', opened, delivered, delivered from email
    union all select kpi_date, segment, channel, 'email_click_rate', clicked, delivered, delivered from email
    union all select kpi_date, segment, channel, 'email_unsubscribe_rate', unsubscribed, delivered, delivered from email
    union all select kpi_date, segment, channel, 'email_click_to_open_rate', clicked, opened, opened from email
    union all select kpi_date, segment, channel, 'loop_closed_rate', loop_closed, alerts, alerts from alerts
)

select
    kpi_date,
    cast(segment as {{ dbt.type_string() }}) as segment,
    cast(channel as {{ dbt.type_string() }}) as channel,
    kpi,
    cast(numerator as {{ type_double() }}) as numerator,
    cast(denominator as {{ type_double() }}) as denominator,
    cast(n as bigint) as n
from unioned
where kpi_date is not null
    and {{ in_kpi_window('kpi_date') }}
