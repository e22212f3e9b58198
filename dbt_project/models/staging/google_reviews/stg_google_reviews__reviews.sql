{# Latest version per review (updated time, then load order). Hard deletes: a review missing from the newest
   reviews__ids snapshot of a full re-read stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql). #}
with source as (
    {{ ranked_good_rows('base_google_reviews__reviews', 'review_id', 'updated_at') }}
),

renamed as (
    select
        -- ids
        review_id,
        location_name,
        -- pii (hashed)
        reviewer_name_hash,
        is_anonymous,
        -- strings
        comment_text,
        reply_text,
        -- numerics
        rating,
        -- timestamps
        created_at,
        updated_at,
        coalesce(reply_at is not null or reply_text is not null, false) as has_reply,
        reply_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ review_deleted_keys('google_reviews', 'base_google_reviews__reviews', 'review_id', 'reviewId') }}
)

select
    r.*,
    d.review_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.review_id = r.review_id
