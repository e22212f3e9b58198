{# One row per (campaign, recipient). Delivered = sent - bounced. Opens flagged filteredEvent (machine/privacy
   prefetch) are not opens; they are counted apart. An unsubscribe is a STATUSCHANGE to UNSUBSCRIBED. #}
with events as (
    select * from {{ ref('stg_hubspot__email_events') }}
),

campaigns as (
    select campaign_id, min(occurred_at) as campaign_sent_at
    from events
    where event_type = 'SENT'
    group by 1
),

recipients as (
    select
        campaign_id,
        recipient_hash,
        max(case when event_type = 'SENT' then 1 else 0 end) = 1 as was_sent,
        max(case when event_type = 'BOUNCE' then 1 else 0 end) = 1 as was_bounced,
        max(case when event_type = 'DELIVERED' then 1 else 0 end) = 1 as has_delivered_event,
        max(case when event_type = 'OPEN' and not is_filtered then 1 else 0 end) = 1 as was_opened,
        max(case when event_type = 'OPEN' and is_filtered then 1 else 0 end) = 1 as has_filtered_open,
        max(case when event_type = 'CLICK' then 1 else 0 end) = 1 as was_clicked,
        max(case when is_unsubscribe then 1 else 0 end) = 1 as has_unsubscribed,
        min(case when event_type = 'SENT' then occurred_at end) as sent_at,
        min(case when event_type = 'OPEN' and not is_filtered then occurred_at end) as first_opened_at,
        min(case when event_type = 'CLICK' then occurred_at end) as first_clicked_at,
        min(case when is_unsubscribe then occurred_at end) as unsubscribed_at
    from events
    where recipient_hash is not null
    group by 1, 2
)

select
    r.campaign_id || ':' || r.recipient_hash as campaign_recipient_key,
    r.campaign_id,
    r.recipient_hash,
    r.was_sent,
    r.was_bounced,
    r.was_sent and not r.was_bounced as was_delivered,
    r.has_delivered_event,
    r.was_opened,
    r.has_filtered_open,
    r.was_clicked,
    r.has_unsubscribed,
    r.sent_at,
    r.first_opened_at,
    r.first_clicked_at,
    r.unsubscribed_at,
    coalesce(l.person_id, '-1') as person_sk,
    c.campaign_sent_at,
    cast(c.campaign_sent_at as date) as campaign_sent_date
from recipients as r
left join campaigns as c on c.campaign_id = r.campaign_id
left join {{ ref('int_identity_links') }} as l
    on l.source = 'email_recipient' and l.source_id = r.recipient_hash
