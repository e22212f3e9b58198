{# Issue topics of complaint-context feedback text: feedback that is not positive by the facts' flags - a review
   not positive (not fct_reviews.is_positive: 1-3 stars), or a survey response that is an NPS detractor
   (is_detractor: 0-6), a CSAT response not satisfied (not is_csat_satisfied: 1-3) or a CES response not easy
   (not is_ces_easy: 1-4, 7 = easiest). Wider than the alert rule (int_detractor_alerts: CSAT 1-2, reviews 1-2):
   a topic counts every complaint, an alert only the ones that need a follow-up. A text hits a topic when one of
   the topic's terms (seed issue_topics) occurs as a whole word / phrase of the lower-cased text; one row per
   (feedback, topic). #}
with texts as (
    select
        'review' as feedback_kind,
        r.review_key as feedback_key,
        r.person_sk,
        r.created_at as occurred_at,
        t.comment_text
    from {{ ref('fct_reviews') }} as r
    inner join (
        select 'google' as review_source, review_id, comment_text from {{ ref('stg_google_reviews__reviews') }}
        union all
        select 'trustpilot', review_id, comment_text from {{ ref('stg_trustpilot__reviews') }}
    ) as t on t.review_source = r.review_source and t.review_id = r.review_id
    where not r.is_positive
    union all
    select
        'survey_response',
        'hubspot:' || f.feedback_id,
        f.person_sk,
        f.submitted_at,
        s.comment_text
    from {{ ref('fct_survey_responses') }} as f
    inner join {{ ref('stg_hubspot__feedback_submissions') }} as s on s.feedback_id = f.feedback_id
    where f.is_detractor
        or (f.survey_type = 'CSAT' and not f.is_csat_satisfied)
        or (f.survey_type = 'CES' and not f.is_ces_easy)
),

padded as (
    select
        feedback_kind, feedback_key, person_sk, occurred_at,
        ' ' || replace({{ lexicon_normalize('comment_text') }}, ' ', '  ') || ' ' as padded_text
    from texts
    where comment_text is not null
)

select distinct
    p.feedback_kind,
    p.feedback_key,
    p.person_sk,
    p.occurred_at,
    cast(p.occurred_at as date) as occurred_date,
    cast(k.topic as {{ dbt.type_string() }}) as topic
from padded as p
inner join {{ ref('issue_topics') }} as k
    on {{ str_position('p.padded_text', "' ' || replace(lower(k.term), ' ', '  ') || ' '") }} > 0
