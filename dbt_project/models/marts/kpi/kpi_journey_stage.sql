{# Journey-stage KPIs per calendar month (KPI window) and stage (seed touchpoint_types):
   - touchpoints: touchpoints of the stage that month (fct_touchpoints, anonymous ones included);
   - persons: distinct resolved persons with a touchpoint of the stage that month;
   - survey KPIs of the responses (submitted that month) whose preceding touchpoint (int_feedback_preceding_
     touchpoints) was in the stage: NPS, CSAT %, CES mean as numerator / denominator / value. Responses without a
     preceding touchpoint (unresolved person, or nothing before) fall in stage 'unknown'. Summing the survey
     denominators over stages gives the month's response counts. #}
with stages as (
    select distinct journey_stage, journey_stage_order from {{ ref('dim_touchpoint_types') }}
),

touchpoints as (
    select
        cast({{ dbt.date_trunc('month', 'occurred_date') }} as date) as month_start,
        journey_stage,
        count(*) as touchpoints,
        count(distinct case when person_sk <> '-1' then person_sk end) as persons
    from {{ ref('fct_touchpoints') }}
    where {{ in_kpi_window('occurred_date') }}
    group by 1, 2
),

responses as (
    select
        cast({{ dbt.date_trunc('month', 'f.submitted_date') }} as date) as month_start,
        coalesce(p.preceding_journey_stage, 'unknown') as journey_stage,
        f.survey_type,
        f.score_normalised,
        f.is_promoter,
        f.is_detractor,
        f.is_csat_satisfied
    from {{ ref('fct_survey_responses') }} as f
    left join {{ ref('int_feedback_preceding_touchpoints') }} as p
        on p.source = 'hubspot' and p.source_record_id = f.feedback_id
    where {{ in_kpi_window('f.submitted_date') }}
),

survey as (
    select
        month_start,
        journey_stage,
        sum(case when survey_type = 'NPS' then 1 else 0 end) as nps_responses,
        sum(case when survey_type = 'NPS' and is_promoter then 1 when survey_type = 'NPS' and is_detractor then -1 else 0 end)
            as nps_numerator,
        sum(case when survey_type = 'CSAT' then 1 else 0 end) as csat_responses,
        sum(case when survey_type = 'CSAT' and is_csat_satisfied then 1 else 0 end) as csat_satisfied,
        sum(case when survey_type = 'CES' then 1 else 0 end) as ces_responses,
        sum(case when survey_type = 'CES' then score_normalised else 0 end) as ces_score_sum
    from responses
    group by 1, 2
),

keys as (
    select month_start, journey_stage from touchpoints
    union
    select month_start, journey_stage from survey
)

select
    k.month_start,
    cast(k.journey_stage as {{ dbt.type_string() }}) as journey_stage,
    cast(coalesce(s.journey_stage_order, 0) as integer) as journey_stage_order,
    cast(coalesce(t.touchpoints, 0) as bigint) as touchpoints,
    cast(coalesce(t.persons, 0) as bigint) as persons,
    cast(coalesce(v.nps_responses, 0) as bigint) as nps_responses,
    cast(coalesce(v.nps_numerator, 0) as {{ type_double() }}) as nps_numerator,
    cast({{ kpi_scaled('nps', 'v.nps_numerator', 'v.nps_responses') }} as {{ type_double() }}) as nps,
    cast(coalesce(v.csat_responses, 0) as bigint) as csat_responses,
    cast(coalesce(v.csat_satisfied, 0) as {{ type_double() }}) as csat_satisfied,
    cast({{ kpi_scaled('csat_pct', 'v.csat_satisfied', 'v.csat_responses') }} as {{ type_double() }}) as csat_pct,
    cast(coalesce(v.ces_responses, 0) as bigint) as ces_responses,
    cast(coalesce(v.ces_score_sum, 0) as {{ type_double() }}) as ces_score_sum,
    cast({{ kpi_scaled('ces_mean', 'v.ces_score_sum', 'v.ces_responses') }} as {{ type_double() }}) as ces_mean
from keys as k
left join stages as s on s.journey_stage = k.journey_stage
left join touchpoints as t on t.month_start = k.month_start and t.journey_stage = k.journey_stage
left join survey as v on v.month_start = k.month_start and v.journey_stage = k.journey_stage
