with source as (
    select * from {{ source('hubspot', 'email_events') }}
),

typed as (
    select
        -- ids
        cast(id as varchar) as email_event_id,
        cast(emailCampaignId as varchar) as campaign_id,
        -- pii
        {{ hash_pii(normalize_email('recipient')) }} as recipient_hash,
        -- strings / booleans
        upper(cast(type as varchar)) as event_type,
        coalesce({{ safe_cast_bool('filteredEvent') }}, false) as is_filtered,
        upper(cast(portalSubscriptionStatus as varchar)) as portal_subscription_status,
        coalesce(upper(cast(type as varchar)) = 'STATUSCHANGE'
                  and (upper(cast(portalSubscriptionStatus as varchar)) = 'UNSUBSCRIBED'
                       or upper(cast(subscriptions as varchar)) like '%"STATUS": "UNSUBSCRIBED"%'
                       or upper(cast(subscriptions as varchar)) like '%"STATUS":"UNSUBSCRIBED"%'), false) as is_unsubscribe,
        -- timestamps
        {{ epoch_ms_to_ts('created') }} as occurred_at,
        {{ unparsable_fields([('filteredEvent', 'filteredEvent', safe_cast_bool('filteredEvent'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case
        when email_event_id is null or email_event_id = '' then 'missing_id'
        when occurred_at is null then 'bad_timestamp'
        when _unparsable is not null then 'unparsable_value: ' || _unparsable
    end as quarantine_reason
from typed
