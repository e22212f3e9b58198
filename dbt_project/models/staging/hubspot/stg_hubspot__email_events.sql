{# Marketing e-mail events: the latest good version per email_event_id (occurred_at, then _load_id, then
   _record_seq; the same order as ranked_good_rows).
   Incremental (delete+insert on email_event_id): a run recomputes, from all their good raw rows, only the keys
   that have a good row ranking above the stored version (a new event, a later version, in whatever load order)
   or whose stored row is no longer a good raw row; a post-hook drops stored rows whose raw row is gone and that
   got no replacement. Equal to a full refresh (tests/dbt/test_staging_incremental.py). #}
{{ config(
    materialized=upsert_materialization(),
    unique_key='email_event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{% if is_incremental() %}{{ drop_rows_gone_from_base('base_hubspot__email_events') }}{% endif %}",
) }}

with
{% if is_incremental() %}
changed_keys as (
    {{ changed_version_keys('base_hubspot__email_events', 'email_event_id', 'occurred_at', this) }}
),
{% endif %}

source as (
    select
        *,
        row_number() over (
            partition by email_event_id
            order by occurred_at desc nulls last, _load_id desc, _record_seq desc
        ) as _version_rank
    from {{ ref('base_hubspot__email_events') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and email_event_id in (select email_event_id from changed_keys)
    {% endif %}
),

renamed as (
    select
        email_event_id,
        campaign_id,
        recipient_hash,
        event_type,
        is_filtered,
        is_unsubscribe,
        occurred_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
