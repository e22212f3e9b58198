with source as (
    select * from {{ source('google_reviews', 'reviews') }}
),

typed as (
    select
        -- ids
        cast(reviewId as varchar) as review_id,
        cast(_location_name as varchar) as location_name,
        -- pii
        {{ hash_pii(normalize_name('reviewer__displayName')) }} as reviewer_name_hash,
        coalesce({{ safe_cast_bool('reviewer__isAnonymous') }}, false) as is_anonymous,
        -- strings
        cast(starRating as varchar) as star_rating_raw,
        cast(comment as varchar) as comment_text,
        cast(reviewReply__comment as varchar) as reply_text,
        -- numerics
        case cast(starRating as varchar)
            when 'ONE' then 1 when 'TWO' then 2 when 'THREE' then 3 when 'FOUR' then 4 when 'FIVE' then 5
        end as rating,
        -- timestamps
        {{ try_ts_utc('createTime') }} as created_at,
        {{ try_ts_utc('updateTime') }} as updated_at,
        {{ try_ts_utc('reviewReply__updateTime') }} as reply_at,
        (createTime is null or {{ try_ts_utc('createTime') }} is null)
            or (nullif(cast(updateTime as varchar), '') is not null and {{ try_ts_utc('updateTime') }} is null)
            or (nullif(cast(reviewReply__updateTime as varchar), '') is not null
                and {{ try_ts_utc('reviewReply__updateTime') }} is null) as _bad_ts,
        {{ unparsable_fields([('reviewer.isAnonymous', 'reviewer__isAnonymous', safe_cast_bool('reviewer__isAnonymous'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case
        when review_id is null or review_id = '' then 'missing_id'
        when rating is null then 'rating_invalid'
        when _bad_ts then 'bad_timestamp'
        when _unparsable is not null then 'unparsable_value: ' || _unparsable
    end as quarantine_reason
from typed
