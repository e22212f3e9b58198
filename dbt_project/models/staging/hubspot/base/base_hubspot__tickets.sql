with source as (
    select * from {{ source('hubspot', 'tickets') }}
),

typed as (
    select
        -- ids
        cast(id as varchar) as ticket_id,
        -- strings
        cast(properties__subject as varchar) as subject,
        cast(properties__hs_pipeline_stage as varchar) as pipeline_stage,
        cast(properties__hs_ticket_priority as varchar) as priority,
        cast(properties__hs_ticket_category as varchar) as category,
        coalesce({{ safe_cast_bool('archived') }}, false) as is_archived,
        -- timestamps
        coalesce({{ try_ts_utc('properties__createdate') }}, {{ try_ts_utc('createdAt') }}) as created_at,
        {{ try_ts_utc('properties__first_agent_reply_date') }} as first_response_at,
        {{ try_ts_utc('properties__closed_date') }} as closed_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        (nullif(properties__createdate, '') is not null and {{ try_ts_utc('properties__createdate') }} is null)
            or (nullif(properties__first_agent_reply_date, '') is not null
                and {{ try_ts_utc('properties__first_agent_reply_date') }} is null)
            or (nullif(properties__closed_date, '') is not null and {{ try_ts_utc('properties__closed_date') }} is null)
            or (updatedAt is not null and {{ try_ts_utc('updatedAt') }} is null)
            -- createdAt is created_at's fallback: present, it parses in full (not only when it is used)
            or ({{ is_present('createdAt') }} and {{ try_ts_utc('createdAt') }} is null) as _bad_ts,
        {{ unparsable_fields([('archived', 'archived', safe_cast_bool('archived'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case when ticket_id is null or ticket_id = '' then 'missing_id' when _bad_ts then 'bad_timestamp'
        when _unparsable is not null then 'unparsable_value: ' || _unparsable end as quarantine_reason
from typed
