{# Response-level survey facts (HubSpot feedback submissions); scale from hs_survey_type.
   Submissions archived (deleted) in HubSpot are excluded. #}
select
    f.feedback_id,
    coalesce(l.person_id, '-1') as person_sk,
    f.contact_id,
    f.survey_type,
    f.survey_channel,
    f.score,
    f.score_normalised,
    f.survey_type = 'NPS' and f.score >= 9 as is_promoter,
    f.survey_type = 'NPS' and f.score between 7 and 8 as is_passive,
    f.survey_type = 'NPS' and f.score <= 6 as is_detractor,
    f.survey_type = 'CSAT' and f.score >= 4 as is_csat_satisfied,
    f.survey_type = 'CES' and f.score_normalised >= 5 as is_ces_easy,
    f.comment_text is not null as has_comment,
    f.submitted_at,
    cast(f.submitted_at as date) as submitted_date,
    coalesce(st.sentiment_label, 'unknown') as sentiment_label,
    st.sentiment_score,
    st.language as text_language
from {{ ref('stg_hubspot__feedback_submissions') }} as f
left join {{ ref('int_text_sentiment') }} as st on st.text_key = 'hubspot:' || f.feedback_id
left join {{ ref('int_identity_links') }} as l
    on l.source = 'hubspot' and l.source_id = f.contact_id
where not f.is_deleted
