with source as (
    select * from {{ source('hubspot', 'contacts') }}
),

typed as (
    select
        -- ids
        cast(id as varchar) as contact_id,
        -- pii: salted hashes of the normalised values; plaintext never leaves this query
        {{ hash_pii(normalize_email('properties__email')) }} as email_hash,
        {{ hash_pii(normalize_phone('properties__phone')) }} as phone_hash,
        {{ hash_pii(normalize_name("coalesce(properties__firstname, '') || ' ' || coalesce(properties__lastname, '')")) }} as name_hash,
        -- strings
        cast(properties__lifecyclestage as varchar) as lifecycle_stage,
        coalesce({{ safe_cast_bool('archived') }}, false) as is_archived,
        -- timestamps
        {{ try_ts_utc('createdAt') }} as created_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        (createdAt is not null and {{ try_ts_utc('createdAt') }} is null)
            or (updatedAt is not null and {{ try_ts_utc('updatedAt') }} is null) as _bad_ts,
        {{ unparsable_fields([('archived', 'archived', safe_cast_bool('archived'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when contact_id is null or contact_id = '' then 'missing_id'
        when _bad_ts then 'bad_timestamp'
        when _unparsable is not null then 'unparsable_value: ' || _unparsable
    end as quarantine_reason
from typed
