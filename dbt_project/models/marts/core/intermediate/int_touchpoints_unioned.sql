{# All touchpoints, computed from the facts (a view): the logic of fct_touchpoints, which materialises it
   incrementally. See fct_touchpoints.sql for the grain, types, channels and keys. #}
{{ config(materialized='view') }}

with types as (
    select touchpoint_type, default_channel_sk, journey_stage from {{ ref('dim_touchpoint_types') }}
),

sessions as (
    select
        case
            when has_purchase then 'web_session_purchase'
            when row_number() over (partition by user_pseudo_id order by session_start_at, ga_session_id) = 1
                then 'web_session_first'
            else 'web_session'
        end as touchpoint_type,
        'ga4' as source,
        session_key as source_record_id,
        person_sk,
        cast(null as {{ dbt.type_string() }}) as channel_override,
        session_start_at as occurred_at,
        cast(case when is_engaged then 'engaged' else 'not_engaged' end as {{ dbt.type_string() }}) as detail,
        cast(events as {{ type_double() }}) as measure
    from {{ ref('fct_web_sessions') }}
),

orders as (
    select
        case when o.state = 'sale' then 'order_confirmed'
             when o.state = 'cancel' then 'order_cancelled'
             else 'order_quotation' end,
        'odoo',
        cast(o.order_id as {{ dbt.type_string() }}),
        o.person_sk,
        {{ order_channel_sk('t.team_name') }},
        o.ordered_at,
        o.state,
        cast(o.amount_untaxed as {{ type_double() }})
    from {{ ref('fct_orders') }} as o
    left join {{ ref('stg_odoo__crm_teams') }} as t on t.team_id = o.team_id
),

deliveries as (
    select
        'delivery_done',
        'odoo',
        cast(picking_id as {{ dbt.type_string() }}),
        person_sk,
        cast(null as {{ dbt.type_string() }}),
        done_at,
        case when is_on_time then 'on_time' else 'late' end,
        cast(delay_days as {{ type_double() }})
    from {{ ref('fct_deliveries') }}
    where is_done
),

tickets as (
    select 'ticket_created', 'hubspot', ticket_id, person_sk, cast(null as {{ dbt.type_string() }}), created_at, category,
           cast(null as {{ type_double() }})
    from {{ ref('fct_support_tickets') }}
    union all
    select 'ticket_first_response', 'hubspot', ticket_id, person_sk, null, first_response_at, category, first_response_hours
    from {{ ref('fct_support_tickets') }}
    union all
    select 'ticket_closed', 'hubspot', ticket_id, person_sk, null, closed_at, category, resolution_hours
    from {{ ref('fct_support_tickets') }}
    where is_closed
),

surveys as (
    select
        'survey_response',
        'hubspot',
        feedback_id,
        person_sk,
        {{ survey_channel_sk('survey_channel') }},
        submitted_at,
        survey_type,
        cast(score as {{ type_double() }})
    from {{ ref('fct_survey_responses') }}
),

reviews as (
    select 'review', case review_source when 'google' then 'google_reviews' else review_source end, review_id, person_sk, cast(null as {{ dbt.type_string() }}), created_at,
           review_source, cast(rating as {{ type_double() }})
    from {{ ref('fct_reviews') }}
),

emails as (
    select 'email_sent', 'hubspot', campaign_recipient_key, person_sk, cast(null as {{ dbt.type_string() }}), sent_at,
           campaign_id, cast(null as {{ type_double() }})
    from {{ ref('fct_email_events') }}
    where was_sent
    union all
    select 'email_open', 'hubspot', campaign_recipient_key, person_sk, null, first_opened_at, campaign_id, null
    from {{ ref('fct_email_events') }}
    union all
    select 'email_click', 'hubspot', campaign_recipient_key, person_sk, null, first_clicked_at, campaign_id, null
    from {{ ref('fct_email_events') }}
    union all
    select 'email_unsubscribe', 'hubspot', campaign_recipient_key, person_sk, null, unsubscribed_at, campaign_id, null
    from {{ ref('fct_email_events') }}
),

unioned as (
    select * from sessions
    union all select * from orders
    union all select * from deliveries
    union all select * from tickets
    union all select * from surveys
    union all select * from reviews
    union all select * from emails
),

shaped as (
    select
        -- stable per source event: an order that gets confirmed, or a session that stops being a browser's first,
        -- changes its type but keeps its key
        case when u.touchpoint_type like 'order_%' then 'order'
             when u.touchpoint_type like 'web_session%' then 'web_session'
             else u.touchpoint_type end || ':' || u.source || ':' || u.source_record_id as touchpoint_key,
        u.person_sk,
        coalesce(t.touchpoint_type, '-1') as touchpoint_type_sk,
        coalesce(u.channel_override, t.default_channel_sk, '-1') as channel_sk,
        coalesce(t.journey_stage, 'unknown') as journey_stage,
        u.occurred_at,
        cast(u.occurred_at as date) as occurred_date,
        u.source,
        u.source_record_id,
        u.detail,
        u.measure
    from unioned as u
    left join types as t on t.touchpoint_type = u.touchpoint_type
    where u.occurred_at is not null
),

hashed as (
    select
        *,
        {{ dbt.hash("coalesce(person_sk, '') || '|' || touchpoint_type_sk || '|' || channel_sk || '|' || cast(occurred_at as " ~ dbt.type_string() ~ ") || '|' || coalesce(detail, '') || '|' || coalesce(cast(measure as " ~ dbt.type_string() ~ "), '')") }} as row_hash
    from shaped
)

select * from hashed
