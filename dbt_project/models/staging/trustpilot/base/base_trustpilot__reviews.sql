with source as (
    select * from {{ source('trustpilot', 'reviews') }}
),

typed as (
    select
        -- ids
        nullif(cast(id as varchar), '') as review_id,
        cast(businessUnit__id as varchar) as business_unit_id,
        cast(consumer__id as varchar) as consumer_id,
        nullif(trim(cast(referenceId as varchar)), '') as reference_id,
        -- pii
        {{ hash_pii(normalize_email('referralEmail')) }} as referral_email_hash,
        {{ hash_pii(normalize_name('consumer__displayName')) }} as reviewer_name_hash,
        -- strings
        cast(title as varchar) as title,
        cast(text as varchar) as comment_text,
        cast(language as varchar) as language,
        cast(companyReply__text as varchar) as reply_text,
        -- numerics
        {{ safe_cast_numeric('stars') }} as _stars,
        -- timestamps (offsets such as +02:00 are converted to UTC)
        {{ try_ts_utc('createdAt') }} as created_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        {{ try_ts_utc('experiencedAt') }} as experienced_at,
        {{ try_ts_utc('companyReply__createdAt') }} as reply_at,
        (createdAt is null or {{ try_ts_utc('createdAt') }} is null)
            or (nullif(cast(updatedAt as varchar), '') is not null and {{ try_ts_utc('updatedAt') }} is null)
            or ({{ is_present('experiencedAt') }} and {{ try_ts_utc('experiencedAt') }} is null)
            or (nullif(cast(companyReply__createdAt as varchar), '') is not null
                and {{ try_ts_utc('companyReply__createdAt') }} is null) as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case when _stars in (1, 2, 3, 4, 5) then cast(_stars as integer) end as rating,
    coalesce(updated_at, created_at) as version_at,
    case
        when review_id is null then 'missing_id'
        when _stars is null or _stars not in (1, 2, 3, 4, 5) then 'rating_invalid'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
