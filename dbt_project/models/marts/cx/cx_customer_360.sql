{# One wide row per resolved person for BI: what they bought, how they rated us, how they used the site and support.
   Everything sums over all the person's records (odoo_partners ERP partners, every HubSpot contact). #}
with customers as (
    select * from {{ ref('dim_customers') }} where person_sk <> '-1'
),

orders as (
    select person_sk,
           count(*) as confirmed_orders,
           sum(amount_untaxed) as net_revenue,
           min(ordered_at) as first_order_at,
           max(ordered_at) as last_order_at
    from {{ ref('fct_orders') }}
    where is_confirmed
    group by 1
),

deliveries as (
    select person_sk,
           count(*) as deliveries_done,
           sum(case when is_on_time then 0 else 1 end) as late_deliveries
    from {{ ref('fct_deliveries') }}
    where is_done
    group by 1
),

surveys as (
    select person_sk,
           count(*) as survey_responses,
           max(case when survey_type = 'NPS' then submitted_at end) as last_nps_at,
           sum(case when is_detractor then 1 else 0 end) as nps_detractor_responses,
           avg(case when survey_type = 'CSAT' then score end) as csat_mean
    from {{ ref('fct_survey_responses') }}
    group by 1
),

last_nps as (
    select person_sk, score as last_nps_score
    from (
        select person_sk, score,
               row_number() over (partition by person_sk order by submitted_at desc, feedback_id desc) as rn
        from {{ ref('fct_survey_responses') }}
        where survey_type = 'NPS'
    ) as s
    where rn = 1
),

reviews as (
    select person_sk, count(*) as reviews, avg(rating) as review_rating_avg
    from {{ ref('fct_reviews') }}
    group by 1
),

sessions as (
    select person_sk, count(*) as web_sessions, sum(case when has_purchase then 1 else 0 end) as purchase_sessions
    from {{ ref('fct_web_sessions') }}
    group by 1
),

tickets as (
    select person_sk, count(*) as tickets, sum(case when is_closed then 0 else 1 end) as open_tickets
    from {{ ref('fct_support_tickets') }}
    group by 1
)

select
    c.person_sk,
    c.odoo_partner_id,
    c.hubspot_contact_id,
    c.odoo_partners,
    c.country_id,
    c.first_seen_at,
    coalesce(o.confirmed_orders, 0) as confirmed_orders,
    coalesce(o.net_revenue, 0) as lifetime_net_revenue,
    o.first_order_at,
    o.last_order_at,
    coalesce(d.deliveries_done, 0) as deliveries_done,
    coalesce(d.late_deliveries, 0) as late_deliveries,
    coalesce(s.survey_responses, 0) as survey_responses,
    n.last_nps_score,
    s.last_nps_at,
    coalesce(s.nps_detractor_responses, 0) as nps_detractor_responses,
    s.csat_mean,
    coalesce(r.reviews, 0) as reviews,
    r.review_rating_avg,
    coalesce(w.web_sessions, 0) as web_sessions,
    coalesce(w.purchase_sessions, 0) as purchase_sessions,
    coalesce(t.tickets, 0) as tickets,
    coalesce(t.open_tickets, 0) as open_tickets
from customers as c
left join orders as o on o.person_sk = c.person_sk
left join deliveries as d on d.person_sk = c.person_sk
left join surveys as s on s.person_sk = c.person_sk
left join last_nps as n on n.person_sk = c.person_sk
left join reviews as r on r.person_sk = c.person_sk
left join sessions as w on w.person_sk = c.person_sk
left join tickets as t on t.person_sk = c.person_sk
