{# The alert rule of the inner loop (kpi-definitions "Closed loop"), the one place it lives: one alert per NPS
   detractor (fct_survey_responses.is_detractor: 0-6), CSAT 1-2 ('csat_low': the alert's own cut, no fact flag -
   below the satisfied 4-5 of is_csat_satisfied) and review of 1-2 stars (fct_reviews.is_negative).
   due_at = created_at + var alert_due_hours (48 h). is_loop_closed: after created_at and before due_at (both
   strict) the person got an agent contact - a support ticket created or a ticket's first agent reply - or, for a
   review, the company replied to it. Unresolved persons ('-1') can only be closed by a review reply.
   comment = the free text as written, e-mail addresses and phone numbers masked (mask_pii_text).
   touchpoint_key: the feedback's touchpoint in fct_touchpoints.
   Read by cx_detractor_alerts (the published alerts: + id, preceding touchpoint, channel) and by
   int_kpi_day_counts (loop_closed_rate), so the mart and the KPI count the same alerts. #}
with surveys as (
    select
        case when f.is_detractor then 'nps_detractor' else 'csat_low' end as alert_type,
        'hubspot' as source,
        f.feedback_id as source_record_id,
        f.person_sk,
        f.score,
        s.comment_text,
        f.submitted_at as created_at,
        cast(null as {{ dbt.type_timestamp() }}) as reply_at,
        'survey_response:hubspot:' || f.feedback_id as touchpoint_key,
        coalesce({{ survey_channel_sk('f.survey_channel') }}, 'survey') as channel
    from {{ ref('fct_survey_responses') }} as f
    left join {{ ref('stg_hubspot__feedback_submissions') }} as s on s.feedback_id = f.feedback_id
    where f.is_detractor
        or (f.survey_type = 'CSAT' and f.score <= 2)
),

review_texts as (
    select 'google' as review_source, review_id, comment_text from {{ ref('stg_google_reviews__reviews') }}
    union all
    select 'trustpilot', review_id, comment_text from {{ ref('stg_trustpilot__reviews') }}
),

reviews as (
    select
        'review_low' as alert_type,
        case r.review_source when 'google' then 'google_reviews' else r.review_source end as source,
        r.review_id as source_record_id,
        r.person_sk,
        r.rating as score,
        t.comment_text,
        r.created_at,
        case when r.has_reply then r.reply_at end as reply_at,
        'review:' || case r.review_source when 'google' then 'google_reviews' else r.review_source end || ':' || r.review_id as touchpoint_key,
        'review_site' as channel
    from {{ ref('fct_reviews') }} as r
    left join review_texts as t on t.review_source = r.review_source and t.review_id = r.review_id
    where r.is_negative
),

alerts as (
    select * from surveys
    union all
    select * from reviews
),

timed as (
    select
        a.*,
        {{ dbt.dateadd('hour', var('alert_due_hours'), 'a.created_at') }} as due_at
    from alerts as a
),

agent_contacts as (
    select person_sk, created_at as contact_at from {{ ref('fct_support_tickets') }}
    where person_sk <> '-1'
    union all
    select person_sk, first_response_at from {{ ref('fct_support_tickets') }}
    where person_sk <> '-1' and first_response_at is not null
),

closed as (
    select distinct t.source, t.source_record_id
    from timed as t
    inner join agent_contacts as c
        on c.person_sk = t.person_sk
        and c.contact_at > t.created_at
        and c.contact_at < t.due_at
    where t.person_sk <> '-1'
)

select
    t.alert_type,
    t.source,
    t.source_record_id,
    t.person_sk,
    t.score,
    {{ mask_pii_text('t.comment_text') }} as comment,
    cast(t.created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(t.due_at as {{ dbt.type_timestamp() }}) as due_at,
    (c.source_record_id is not null
        or (t.reply_at is not null and t.reply_at > t.created_at and t.reply_at < t.due_at)) as is_loop_closed,
    t.touchpoint_key,
    -- the channel the feedback came through (dim_channels code; the feedback touchpoint's channel): KPI rows per channel
    t.channel
from timed as t
left join closed as c on c.source = t.source and c.source_record_id = t.source_record_id
