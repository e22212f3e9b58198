{# One row per customer interaction on any channel - the journey in one table. Grain and types (seed
   touchpoint_types, which also maps each type to its journey stage):
   - web sessions (fct_web_sessions): web_session_purchase if the session has a purchase, else
     web_session_first for the first session of a browser (user_pseudo_id), else web_session; at session start;
   - orders (fct_orders): order_confirmed (state sale) / order_quotation (draft, sent) / order_cancelled, at date_order;
   - deliveries (fct_deliveries, outgoing and done): delivery_done at date_done;
   - support tickets: three touchpoints - ticket_created, ticket_first_response, ticket_closed - at their times;
   - survey responses and reviews: survey_response / review at submission / creation;
   - marketing e-mail per (campaign, recipient): email_sent, email_open (first non-machine open), email_click,
     email_unsubscribe.
   Anonymous interactions (unresolved person) keep person_sk '-1'. Channel: orders by sales team (Website ->
   online_store, any other team -> sales_team), surveys by their survey channel (EMAIL -> email, WEB -> web,
   CHAT -> phone_chat), otherwise the type's default channel.
   touchpoint_key = <family>:<source>:<source record id>, family = the type except order_* -> 'order' and
   web_session* -> 'web_session', so a key survives a change of type.
   Incremental (delete+insert on touchpoint_key): a run re-reads rows at or after (stored high-water mark -
   var touchpoint_lookback_days) and any older row whose content changed (row_hash differs: a late identity
   resolution, a cancelled order); a post-hook of the incremental run deletes stored rows whose source row is gone
   (a full build has none; on Spark, where the model is a table - upsert_materialization - there is no DELETE). #}
{{ config(
    materialized=upsert_materialization(),
    unique_key='touchpoint_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{% if is_incremental() %}delete from {{ this }} as t where not exists (select 1 from {{ ref('int_touchpoints_unioned') }} as u where u.touchpoint_key = t.touchpoint_key){% endif %}",
) }}

select h.*
from {{ ref('int_touchpoints_unioned') }} as h
{% if is_incremental() %}
left join {{ this }} as t
    on t.touchpoint_key = h.touchpoint_key and t.row_hash = h.row_hash
where t.touchpoint_key is null
    or h.occurred_at >= (
        select {{ dbt.dateadd('day', -1 * var('touchpoint_lookback_days'), 'max(occurred_at)') }} from {{ this }}
    )
{% endif %}
