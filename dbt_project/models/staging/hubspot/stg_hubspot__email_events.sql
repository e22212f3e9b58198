with source as (
    {{ ranked_good_rows('base_hubspot__email_events', 'email_event_id', 'occurred_at') }}
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
