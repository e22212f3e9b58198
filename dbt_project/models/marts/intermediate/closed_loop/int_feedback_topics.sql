{# Issue topics of complaint-context feedback text (int_complaint_feedback: the rule): Google / Trustpilot reviews
   and survey responses that are not positive. A text hits a topic when one of
   the topic's terms (seed issue_topics) occurs as a whole word / phrase of the lower-cased text; one row per
   (feedback, topic). #}
with texts as (
    -- the seed topics read Google / Trustpilot review text and survey comments, not review files or tickets
    select feedback_kind, feedback_key, person_sk, occurred_at, text_body as comment_text
    from {{ ref('int_complaint_feedback') }}
    where feedback_kind = 'survey_response'
        or (feedback_kind = 'review' and text_source in ('google_reviews', 'trustpilot'))
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
