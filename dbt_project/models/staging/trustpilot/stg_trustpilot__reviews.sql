{# Latest version per review (updated time, then load order). Hard deletes: a review missing from the newest
   reviews__ids snapshot of a full re-read stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql). #}
with source as (
    {{ ranked_good_rows('base_trustpilot__reviews', 'review_id', 'version_at') }}
),

renamed as (
    select
        -- ids
        review_id,
        business_unit_id,
        consumer_id,
        reference_id,
        -- pii (hashed)
        referral_email_hash,
        reviewer_name_hash,
        -- strings
        title,
        comment_text,
        language,
        reply_text,
        -- numerics
        rating,
        -- timestamps
        created_at,
        updated_at,
        experienced_at,
        coalesce(reply_at is not null or reply_text is not null, false) as has_reply,
        reply_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ review_deleted_keys('trustpilot', 'base_trustpilot__reviews', 'review_id', 'id') }}
)

select
    r.*,
    d.review_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.review_id = r.review_id
