{# One row per landed row of a review file. The extractor already checked id, rating in the site's scale and the
   creation time (bad rows are its dead letters); these checks hold the same rules for the raw contract. The rating
   goes to the 1-5 scale the other review sources use: 1 + 4 * (r - min) / (max - min), rounded half up. #}
with source as (
    select * from {{ source('review_files', 'reviews') }}
),

typed as (
    select
        -- ids
        cast(site as varchar) as site,
        nullif(cast(review_id as varchar), '') as review_id,
        cast(site as varchar) || ':' || cast(review_id as varchar) as review_key,
        nullif(trim(cast(location as varchar)), '') as location,
        cast(file_name as varchar) as file_name,
        cast(file_sha256 as varchar) as file_sha256,
        cast(file_row as bigint) as file_row_number,
        -- pii
        {{ hash_pii(normalize_name('author')) }} as author_hash,
        -- strings
        cast(title as varchar) as title,
        nullif(trim(cast(text as varchar)), '') as comment_text,
        cast(language as varchar) as language,
        nullif(trim(cast(reply_text as varchar)), '') as reply_text,
        -- numerics
        {{ safe_cast_numeric('rating') }} as rating_original,
        cast(rating_min as double precision) as rating_min,
        cast(rating_max as double precision) as rating_max,
        -- timestamps
        {{ try_ts_utc('created_at') }} as created_at,
        {{ try_ts_utc('reply_at') }} as reply_at,
        (created_at is null or {{ try_ts_utc('created_at') }} is null)
            or (nullif(cast(reply_at as varchar), '') is not null and {{ try_ts_utc('reply_at') }} is null)
            as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case when rating_original between rating_min and rating_max and rating_min < rating_max
         then cast(floor(1 + 4 * (rating_original - rating_min) / (rating_max - rating_min) + 0.5) as integer)
    end as rating,
    created_at as version_at,
    case
        when review_id is null or site is null then 'missing_id'
        when rating_original is null or rating_min is null or rating_max is null or rating_min >= rating_max
            or rating_original not between rating_min and rating_max then 'rating_invalid'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
