{# Lexicon sentiment of review and survey comment text (macro text_sentiment, macros/marts_dialect.sql):
   one row per text with a comment. text_key = review_key ('google:<id>', 'trustpilot:<id>', '<review file site>:<id>') or
   'hubspot:<feedback_id>'. Language: Trustpilot's `language`, else the detection rule of the macro. #}
{% set texts_sql %}
    select 'google:' || review_id as text_id, comment_text as text_body, cast(null as {{ dbt.type_string() }}) as language_hint
    from {{ ref('stg_google_reviews__reviews') }}
    where comment_text is not null and trim(comment_text) <> ''
    union all
    select 'trustpilot:' || review_id, comment_text, language
    from {{ ref('stg_trustpilot__reviews') }}
    where comment_text is not null and trim(comment_text) <> ''
    union all
    select review_key, comment_text, language
    from {{ ref('stg_review_files__reviews') }}
    where comment_text is not null and trim(comment_text) <> ''
    union all
    select 'hubspot:' || feedback_id, comment_text, cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_hubspot__feedback_submissions') }}
    where comment_text is not null and trim(comment_text) <> ''
{% endset %}

with scored as (
    {{ text_sentiment(texts_sql) }}
)

select
    text_id as text_key,
    case when text_id like 'hubspot:%' then 'survey_response' else 'review' end as text_kind,
    language,
    is_language_covered,
    matched_terms,
    raw_score,
    sentiment_score,
    sentiment_label
from scored
