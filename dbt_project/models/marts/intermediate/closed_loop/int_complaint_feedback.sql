{# Complaint-context feedback with its text, the one place that rule lives (read by int_feedback_topics and
   int_feedback_texts): a review that is not positive (fct_reviews.is_positive false: 1-3 stars), a survey response
   that is not positive by the facts' flags (NPS detractor, CSAT not satisfied: 1-3, CES not easy: 1-4), and every
   support ticket's subject (a ticket is a contact about a problem or a question; it has no score). Wider than the
   alert rule (int_detractor_alerts: CSAT 1-2, reviews 1-2): a topic counts every complaint, an alert only the ones
   that need a follow-up. text_source names the staging model the text comes from (a review's text is joined by
   source and id). Every row, also without text and outside the KPI window. #}
with review_texts as (
    select 'google_reviews' as text_source, 'google' as review_source, review_id, comment_text
    from {{ ref('stg_google_reviews__reviews') }}
    union all
    select 'trustpilot', 'trustpilot', review_id, comment_text from {{ ref('stg_trustpilot__reviews') }}
    union all
    select 'review_files', site, review_id, comment_text from {{ ref('stg_review_files__reviews') }}
)

select
    'review' as feedback_kind,
    t.text_source,
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
    'hubspot_feedback_submissions',
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
    'hubspot_tickets',
    'hubspot_ticket:' || k.ticket_id,
    k.person_sk,
    k.created_at,
    k.created_date,
    s.subject
from {{ ref('fct_support_tickets') }} as k
inner join {{ ref('stg_hubspot__tickets') }} as s on s.ticket_id = k.ticket_id
