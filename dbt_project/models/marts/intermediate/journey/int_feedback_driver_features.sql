{# The experiences before each response that the key-driver analysis (cxw/analytics/key_drivers.py, issue 19.2)
   relates to its score: one row per NPS or CSAT survey response and per review of a resolved person in the KPI
   window, with what that person went through in the var driver_lookback_days (90) days before it:
   - the latest done delivery (done_at <= the response): late or not and its delay in days (0 when on time or none);
   - support tickets created in the lookback: count, mean hours to the first reply and to resolution (0: none);
   - the product category of the latest confirmed order in the lookback (its largest line; 'none' without one);
   - web friction: sessions in the lookback that added to the cart without a purchase;
   - the channel of the response (survey channel; the review site for a review);
   - the person's segment on the response date (dim_customer_segments: valid_from <= date < valid_to; 'new' before
     the person's first month end, as the KPI rows count it - docs/segments.md).
   Scores as given: NPS 0-10, CSAT 1-5, review stars 1-5. Unresolved persons ('-1') have no history: left out. #}
with responses as (
    select
        'survey_response:' || feedback_id as response_key,
        case survey_type when 'NPS' then 'nps' else 'csat' end as score_name,
        person_sk,
        cast(score as {{ type_double() }}) as score,
        submitted_at as responded_at,
        submitted_date as responded_date,
        lower(coalesce(survey_channel, 'unknown')) as channel
    from {{ ref('fct_survey_responses') }}
    where person_sk <> '-1' and survey_type in ('NPS', 'CSAT') and score is not null
        and {{ in_kpi_window('submitted_date') }}
    union all
    select
        'review:' || review_key,
        'review_rating',
        person_sk,
        cast(rating as {{ type_double() }}),
        created_at,
        created_date,
        lower(review_source)
    from {{ ref('fct_reviews') }}
    where person_sk <> '-1' and rating is not null and {{ in_kpi_window('created_date') }}
),

latest_delivery as (
    select
        r.response_key,
        d.is_on_time,
        d.delay_days,
        row_number() over (partition by r.response_key order by d.done_at desc, d.picking_id desc) as rn
    from responses as r
    inner join {{ ref('fct_deliveries') }} as d
        on d.person_sk = r.person_sk
        and d.is_done
        and d.done_at <= r.responded_at
        and d.done_at >= {{ dbt.dateadd('day', -1 * var('driver_lookback_days'), 'r.responded_at') }}
),

tickets as (
    select
        r.response_key,
        count(*) as ticket_count,
        avg(t.first_response_hours) as first_response_hours,
        avg(t.resolution_hours) as resolution_hours
    from responses as r
    inner join {{ ref('fct_support_tickets') }} as t
        on t.person_sk = r.person_sk
        and t.created_at < r.responded_at
        and t.created_at >= {{ dbt.dateadd('day', -1 * var('driver_lookback_days'), 'r.responded_at') }}
    group by r.response_key
),

order_category as (
    select
        r.response_key,
        coalesce(p.category_name, 'unknown') as product_category,
        row_number() over (
            partition by r.response_key
            order by o.ordered_at desc, l.price_total desc, l.order_line_id desc
        ) as rn
    from responses as r
    inner join {{ ref('fct_orders') }} as o
        on o.person_sk = r.person_sk
        and o.is_confirmed
        and o.ordered_at <= r.responded_at
        and o.ordered_at >= {{ dbt.dateadd('day', -1 * var('driver_lookback_days'), 'r.responded_at') }}
    inner join {{ ref('fct_order_lines') }} as l on l.order_id = o.order_id
    left join {{ ref('dim_products') }} as p on p.product_sk = l.product_sk
),

web as (
    select
        r.response_key,
        sum(case when s.has_add_to_cart and not s.has_purchase then 1 else 0 end) as web_friction_sessions
    from responses as r
    inner join {{ ref('fct_web_sessions') }} as s
        on s.person_sk = r.person_sk
        and s.session_start_at < r.responded_at
        and s.session_start_at >= {{ dbt.dateadd('day', -1 * var('driver_lookback_days'), 'r.responded_at') }}
    group by r.response_key
)

select
    cast(r.response_key as {{ dbt.type_string() }}) as response_key,
    cast(r.score_name as {{ dbt.type_string() }}) as score_name,
    r.person_sk,
    r.score,
    r.responded_at,
    r.responded_date,
    cast(r.channel as {{ dbt.type_string() }}) as channel,
    case when d.response_key is null then 0 else 1 end as has_recent_delivery,
    case when d.response_key is not null and not d.is_on_time then 1 else 0 end as is_delivery_late,
    cast(case when d.delay_days > 0 then d.delay_days else 0 end as {{ type_double() }}) as delay_days,
    cast(coalesce(t.ticket_count, 0) as bigint) as ticket_count,
    cast(coalesce(t.first_response_hours, 0) as {{ type_double() }}) as first_response_hours,
    cast(coalesce(t.resolution_hours, 0) as {{ type_double() }}) as resolution_hours,
    cast(coalesce(c.product_category, 'none') as {{ dbt.type_string() }}) as product_category,
    cast(coalesce(w.web_friction_sessions, 0) as bigint) as web_friction_sessions,
    cast(coalesce(sg.segment, 'new') as {{ dbt.type_string() }}) as segment
from responses as r
left join latest_delivery as d on d.response_key = r.response_key and d.rn = 1
left join tickets as t on t.response_key = r.response_key
left join order_category as c on c.response_key = r.response_key and c.rn = 1
left join web as w on w.response_key = r.response_key
left join {{ ref('dim_customer_segments') }} as sg
    on sg.person_sk = r.person_sk
    and sg.valid_from <= r.responded_date
    and (sg.valid_to is null or r.responded_date < sg.valid_to)
