with source as (
    select * from {{ source('hubspot', 'deals') }}
),

typed as (
    select
        cast(id as varchar) as deal_id,
        cast(properties__dealname as varchar) as deal_name,
        cast(properties__dealstage as varchar) as deal_stage,
        cast(properties__pipeline as varchar) as pipeline,
        {{ try_num('properties__amount') }} as amount,
        {{ try_ts_utc('properties__closedate') }} as close_at,
        coalesce({{ safe_cast_bool('archived') }}, false) as is_archived,
        {{ try_ts_utc('createdAt') }} as created_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        (updatedAt is not null and {{ try_ts_utc('updatedAt') }} is null)
            or (properties__closedate is not null and properties__closedate <> ''
                and {{ try_ts_utc('properties__closedate') }} is null) as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case when deal_id is null or deal_id = '' then 'missing_id' when _bad_ts then 'bad_timestamp' end as quarantine_reason
from typed
