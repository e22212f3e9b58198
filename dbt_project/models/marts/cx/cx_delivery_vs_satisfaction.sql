{# Does lateness move CSAT / NPS? Every survey response of a resolved person in the KPI window is matched to the
   person's latest done outgoing delivery in the var delivery_response_window_days (14) days before it (done_at <=
   submitted_at). Groups: delivery_status on_time / late / no_recent_delivery and delay buckets of the late ones
   (done - scheduled: < 1 day, 1-3, 3-7, >= 7 days). Per group and survey type: the survey KPI's numerator,
   denominator and value as kpi-definitions (NPS 100 x (P - D) / responses, CSAT % 4-5, CES mean; the scale from the
   seed kpi_definitions, macro kpi_scaled), never averaged. #}
with responses as (
    select feedback_id, person_sk, survey_type, score, score_normalised, submitted_at,
           is_promoter, is_detractor, is_csat_satisfied
    from {{ ref('fct_survey_responses') }}
    where person_sk <> '-1' and {{ in_kpi_window('submitted_date') }}
),

deliveries as (
    select picking_id, person_sk, done_at, is_on_time, delay_days
    from {{ ref('fct_deliveries') }}
    where is_done and person_sk <> '-1'
),

matched as (
    select
        r.feedback_id,
        d.picking_id,
        d.is_on_time,
        d.delay_days,
        row_number() over (partition by r.feedback_id order by d.done_at desc, d.picking_id desc) as rn
    from responses as r
    inner join deliveries as d
        on d.person_sk = r.person_sk
        and d.done_at <= r.submitted_at
        and d.done_at >= {{ dbt.dateadd('day', -1 * var('delivery_response_window_days'), 'r.submitted_at') }}
),

classified as (
    select
        r.*,
        m.picking_id,
        case when m.picking_id is null then 'no_recent_delivery'
             when m.is_on_time then 'on_time' else 'late' end as delivery_status,
        case when m.picking_id is null then 'no_recent_delivery'
             when m.is_on_time then 'on_time'
             when m.delay_days < 1 then 'late_lt_1d'
             when m.delay_days < 3 then 'late_1_3d'
             when m.delay_days < 7 then 'late_3_7d'
             else 'late_7d_plus' end as delay_bucket
    from responses as r
    left join matched as m on m.feedback_id = r.feedback_id and m.rn = 1
),

grouped as (
    select
        survey_type,
        delivery_status,
        delay_bucket,
        count(*) as responses,
        count(distinct person_sk) as persons,
        count(distinct picking_id) as deliveries,
        sum(case when is_promoter then 1 else 0 end) as promoters,
        sum(case when is_detractor then 1 else 0 end) as detractors,
        sum(case when is_csat_satisfied then 1 else 0 end) as csat_satisfied,
        sum(score_normalised) as score_sum
    from classified
    group by 1, 2, 3
)

select
    cast(survey_type as {{ dbt.type_string() }}) as survey_type,
    cast(delivery_status as {{ dbt.type_string() }}) as delivery_status,
    cast(delay_bucket as {{ dbt.type_string() }}) as delay_bucket,
    case delay_bucket when 'on_time' then 1 when 'late_lt_1d' then 2 when 'late_1_3d' then 3
                      when 'late_3_7d' then 4 when 'late_7d_plus' then 5 else 0 end as delay_bucket_order,
    cast(case survey_type when 'NPS' then 'nps' when 'CSAT' then 'csat_pct' else 'ces_mean' end as {{ dbt.type_string() }}) as kpi,
    cast(case survey_type when 'NPS' then promoters - detractors
                          when 'CSAT' then csat_satisfied
                          else score_sum end as {{ type_double() }}) as numerator,
    cast(responses as {{ type_double() }}) as denominator,
    case survey_type when 'NPS' then {{ kpi_scaled('nps', '(promoters - detractors)', 'responses') }}
                     when 'CSAT' then {{ kpi_scaled('csat_pct', 'csat_satisfied', 'responses') }}
                     else {{ kpi_scaled('ces_mean', 'score_sum', 'responses') }} end as value,
    cast(responses as bigint) as n,
    persons,
    deliveries,
    promoters,
    detractors,
    csat_satisfied,
    score_sum,
    responses < {{ var('low_sample_min') }} as is_low_sample
from grouped
