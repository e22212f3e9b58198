{# Every survey response and review with the touchpoint that preceded it: the person's latest non-feedback
   touchpoint (seed touchpoint_types.is_feedback = false) strictly before the feedback was given, any channel,
   any distance in time. Unresolved persons ('-1') have no preceding touchpoint. Used by cx_detractor_alerts
   and kpi_journey_stage. #}
with feedback as (
    select
        'survey_response:hubspot:' || feedback_id as touchpoint_key,
        'hubspot' as source,
        feedback_id as source_record_id,
        person_sk,
        submitted_at as created_at
    from {{ ref('fct_survey_responses') }}
    union all
    select
        'review:' || case review_source when 'google' then 'google_reviews' else review_source end || ':' || review_id,
        case review_source when 'google' then 'google_reviews' else review_source end,
        review_id,
        person_sk,
        created_at
    from {{ ref('fct_reviews') }}
),

operational as (
    select t.person_sk, t.touchpoint_type_sk, t.journey_stage, t.occurred_at, t.touchpoint_key
    from {{ ref('fct_touchpoints') }} as t
    inner join {{ ref('dim_touchpoint_types') }} as d on d.touchpoint_type_sk = t.touchpoint_type_sk
    where not d.is_feedback and t.person_sk <> '-1'
),

ranked as (
    select
        f.touchpoint_key,
        o.touchpoint_type_sk,
        o.journey_stage,
        o.occurred_at,
        row_number() over (
            partition by f.touchpoint_key
            order by o.occurred_at desc, o.touchpoint_key desc
        ) as rn
    from feedback as f
    inner join operational as o
        on o.person_sk = f.person_sk and o.occurred_at < f.created_at
    where f.person_sk <> '-1'
)

select
    f.touchpoint_key as feedback_key,
    f.source,
    f.source_record_id,
    f.person_sk,
    f.created_at,
    r.touchpoint_type_sk as preceding_touchpoint_type,
    r.journey_stage as preceding_journey_stage,
    r.occurred_at as preceding_touchpoint_at
from feedback as f
left join ranked as r on r.touchpoint_key = f.touchpoint_key and r.rn = 1
