{# Reviews per review source and location (Google: the location's resource name; Trustpilot: the business unit), per
   calendar month (grain 'month') and for the whole KPI window (grain 'window'), with the review KPIs' counts and
   values on the definitions of kpi_period (review_rating_avg, review_negative_share, review_positive_share,
   review_reply_rate). The dashboard's reviews page reads this table as published. #}
with reviews as (
    select review_source, coalesce(location, 'unknown') as location, rating, is_negative, is_positive, has_reply,
           created_date
    from {{ ref('fct_reviews') }}
    where {{ in_kpi_window('created_date') }}
),

grains as (
    select 'month' as grain, cast(date_trunc('month', created_date) as date) as period_start, *
    from reviews
    union all
    select 'window', min(created_date) over (), *
    from reviews
)

select
    grain,
    period_start,
    review_source,
    location,
    cast(count(*) as bigint) as reviews,
    cast(sum(rating) as {{ type_double() }}) as rating_sum,
    cast(sum(rating) as {{ type_double() }}) / count(*) as review_rating_avg,
    cast(sum(case when is_negative then 1 else 0 end) as bigint) as negative_reviews,
    cast(sum(case when is_negative then 1 else 0 end) as {{ type_double() }}) / count(*) as review_negative_share,
    cast(sum(case when is_positive then 1 else 0 end) as bigint) as positive_reviews,
    cast(sum(case when is_positive then 1 else 0 end) as {{ type_double() }}) / count(*) as review_positive_share,
    cast(sum(case when has_reply then 1 else 0 end) as bigint) as replied_reviews,
    cast(sum(case when has_reply then 1 else 0 end) as {{ type_double() }}) / count(*) as review_reply_rate
from grains
group by grain, period_start, review_source, location
