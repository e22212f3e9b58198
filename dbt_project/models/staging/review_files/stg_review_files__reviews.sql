{# Latest version per site and review id: a changed export of the same site (a new load) wins over the older one
   (load order; the file's creation time does not move when a review is edited). #}
with source as (
    {{ ranked_good_rows('base_review_files__reviews', 'review_key') }}
)

select
    -- ids
    review_key,
    site,
    review_id,
    location,
    file_name,
    file_sha256,
    file_row_number,
    -- pii (hashed)
    author_hash,
    -- strings
    title,
    comment_text,
    language,
    reply_text,
    -- numerics
    rating,
    rating_original,
    rating_min,
    rating_max,
    -- timestamps
    created_at,
    reply_at is not null or reply_text is not null as has_reply,
    reply_at,
    _load_id,
    _record_seq,
    _extracted_at
from source
where _version_rank = 1
