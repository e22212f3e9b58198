-- fct_touchpoints holds exactly one touchpoint per source fact event (and nothing else). Any row returned is a
-- touchpoint type whose count differs from its source fact.
with expected as (
    select 'web_session' as family, count(*) as rows_expected from {{ ref('fct_web_sessions') }}
    union all
    select 'order', count(*) from {{ ref('fct_orders') }} where ordered_at is not null
    union all
    select 'delivery_done', count(*) from {{ ref('fct_deliveries') }} where is_done and done_at is not null
    union all
    select 'ticket_created', count(*) from {{ ref('fct_support_tickets') }} where created_at is not null
    union all
    select 'ticket_first_response', count(*) from {{ ref('fct_support_tickets') }} where first_response_at is not null
    union all
    select 'ticket_closed', count(*) from {{ ref('fct_support_tickets') }} where is_closed and closed_at is not null
    union all
    select 'survey_response', count(*) from {{ ref('fct_survey_responses') }} where submitted_at is not null
    union all
    select 'review', count(*) from {{ ref('fct_reviews') }} where created_at is not null
    union all
    select 'email_sent', count(*) from {{ ref('fct_email_events') }} where was_sent and sent_at is not null
    union all
    select 'email_open', count(*) from {{ ref('fct_email_events') }} where first_opened_at is not null
    union all
    select 'email_click', count(*) from {{ ref('fct_email_events') }} where first_clicked_at is not null
    union all
    select 'email_unsubscribe', count(*) from {{ ref('fct_email_events') }} where unsubscribed_at is not null
),

actual as (
    select
        case when touchpoint_type_sk like 'web_session%' then 'web_session'
             when touchpoint_type_sk like 'order_%' then 'order'
             else touchpoint_type_sk end as family,
        count(*) as rows_actual
    from {{ ref('fct_touchpoints') }}
    group by 1
)

select coalesce(e.family, a.family) as family, e.rows_expected, a.rows_actual
from expected as e
full outer join actual as a on a.family = e.family
where coalesce(e.rows_expected, 0) <> coalesce(a.rows_actual, 0)
