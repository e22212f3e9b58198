{# Customer-level NPS (kpi-definitions: "latest response per customer per period, published beside the
   response-level KPI and named as such"): per day, month and window, each customer's latest NPS response
   counts once. Customer = resolved person; a response of an unresolved person is its own customer.
   Window rows carry period_start null (kpi_period fills the window start). #}
with responses as (
    select
        case when person_sk = '-1' then 'feedback:' || feedback_id else person_sk end as customer_id,
        feedback_id,
        submitted_at,
        submitted_date,
        {{ dbt.date_trunc('month', 'submitted_date') }} as submitted_month,
        is_promoter,
        is_detractor
    from {{ ref('fct_survey_responses') }}
    where survey_type = 'NPS'
        and submitted_date is not null
        and {{ in_kpi_window('submitted_date') }}
),

latest as (
    select
        'day' as grain,
        submitted_date as period_start,
        customer_id, is_promoter, is_detractor,
        row_number() over (partition by customer_id, submitted_date order by submitted_at desc, feedback_id desc) as rn
    from responses
    union all
    select
        'month',
        cast(submitted_month as date),
        customer_id, is_promoter, is_detractor,
        row_number() over (partition by customer_id, submitted_month order by submitted_at desc, feedback_id desc)
    from responses
    union all
    select
        'window',
        cast(null as date),
        customer_id, is_promoter, is_detractor,
        row_number() over (partition by customer_id order by submitted_at desc, feedback_id desc)
    from responses
)

select
    grain,
    period_start,
    'nps_customer_level' as kpi,
    cast(sum(case when is_promoter then 1 when is_detractor then -1 else 0 end) as {{ type_double() }}) as numerator,
    cast(count(*) as {{ type_double() }}) as denominator,
    cast(count(*) as bigint) as n
from latest
where rn = 1
group by 1, 2
