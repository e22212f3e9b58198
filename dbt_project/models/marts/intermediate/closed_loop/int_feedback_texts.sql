{# The complaint-context texts the learned topics (cxw/analytics/topics.py, issue 19.6) are fitted on, in the KPI
   window: a review that is not positive (fct_reviews.is_positive false: 1-3 stars; every review source), a survey
   response that is not positive by the facts' flags (the rule of int_feedback_topics: NPS detractor, CSAT 1-3,
   CES 1-4), and every support ticket's subject (a ticket is a contact about a problem or a question; it has no
   score). One row per feedback with a non-empty text. Never published: the analysis publishes topics, weights
   and keys, not the text. #}
with review_texts as (
    select 'google' as review_source, review_id, comment_text from {{ ref('stg_google_reviews__reviews') }}
    union all
    select 'trustpilot', review_id, comment_text from {{ ref('stg_trustpilot__reviews') }}
    union all
    select site, review_id, comment_text from {{ ref('stg_review_files__reviews') }}
),

texts as (
    select
        'review' as feedback_kind,
        r.review_key as feedback_key,
        r.person_sk,
        r.created_at as occurred_at,
        r.created_date as occurred_date,
        t.comment_text as text_body
    from {{ ref('fct_reviews') }} as r
    inner join review_texts as t on t.review_source = r.review_source and t.review_id = r.review_id
    where not r.is_positive
    union all
    select
        'survey_response',
        'hubspot:' || f.feedback_id,
        f.person_sk,
        f.submitted_at,
        f.submitted_date,
        s.comment_text
    from {{ ref('fct_survey_responses') }} as f
    inner join {{ ref('stg_hubspot__feedback_submissions') }} as s on s.feedback_id = f.feedback_id
    where f.is_detractor
        or (f.survey_type = 'CSAT' and not f.is_csat_satisfied)
        or (f.survey_type = 'CES' and not f.is_ces_easy)
    union all
    select
        'ticket',
        'hubspot_ticket:' || k.ticket_id,
        k.person_sk,
        k.created_at,
        k.created_date,
        s.subject
    from {{ ref('fct_support_tickets') }} as k
    inner join {{ ref('stg_hubspot__tickets') }} as s on s.ticket_id = k.ticket_id
)

select
    feedback_kind,
    feedback_key,
    person_sk,
    occurred_at,
    occurred_date,
    cast(text_body as {{ dbt.type_string() }}) as text_body
from texts
where text_body is not null and trim(text_body) <> ''
    and {{ in_kpi_window('occurred_date') }}
