{# The complaint-context texts the learned topics (cxw/analytics/topics.py, issue 19.6) are fitted on, in the KPI
   window: every row of int_complaint_feedback (the rule: reviews and survey responses not positive, every support
   ticket's subject) with a non-empty text. One row per feedback. Never published: the analysis publishes topics,
   weights and keys, not the text. #}
select
    feedback_kind,
    feedback_key,
    person_sk,
    occurred_at,
    occurred_date,
    cast(text_body as {{ dbt.type_string() }}) as text_body
from {{ ref('int_complaint_feedback') }}
where text_body is not null and trim(text_body) <> ''
    and {{ in_kpi_window('occurred_date') }}
