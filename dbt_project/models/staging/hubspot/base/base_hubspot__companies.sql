with source as (
    select * from {{ source('hubspot', 'companies') }}
),

typed as (
    select
        cast(id as varchar) as company_id,
        cast(properties__name as varchar) as company_name,
        lower(trim(cast(properties__domain as varchar))) as company_domain,
        coalesce({{ safe_cast_bool('archived') }}, false) as is_archived,
        {{ try_ts_utc('createdAt') }} as created_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        (updatedAt is not null and {{ try_ts_utc('updatedAt') }} is null)
            or ({{ is_present('createdAt') }} and {{ try_ts_utc('createdAt') }} is null) as _bad_ts,
        {{ unparsable_fields([('archived', 'archived', safe_cast_bool('archived'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case when company_id is null or company_id = '' then 'missing_id' when _bad_ts then 'bad_timestamp'
        when _unparsable is not null then 'unparsable_value: ' || _unparsable end as quarantine_reason
from typed
