{# Google, Trustpilot and review-file (Yelp, TripAdvisor, app stores...: review_source = the site) reviews on one
   1-5 scale, each in its latest version; reviews deleted at the site (staging
   is_deleted, seen by a full re-read) are excluded. Reply time = reply - review creation, hours.
   Sentiment of the comment from int_text_sentiment ('unknown' without text or in an uncovered language). #}
with google as (
    select
        'google' as review_source,
        review_id,
        '-1' as person_sk,
        location_name as location,
        rating,
        created_at,
        has_reply,
        reply_at,
        comment_text
    from {{ ref('stg_google_reviews__reviews') }}
    where not is_deleted
),

trustpilot as (
    select
        'trustpilot' as review_source,
        r.review_id,
        coalesce(l.person_id, '-1') as person_sk,
        r.business_unit_id as location,
        r.rating,
        r.created_at,
        r.has_reply,
        r.reply_at,
        r.comment_text
    from {{ ref('stg_trustpilot__reviews') }} as r
    left join {{ ref('int_identity_links') }} as l
        on l.source = 'trustpilot' and l.source_id = r.review_id
    where not r.is_deleted
),

review_files as (
    select
        site as review_source,
        review_id,
        '-1' as person_sk,
        location,
        rating,
        created_at,
        has_reply,
        reply_at,
        comment_text
    from {{ ref('stg_review_files__reviews') }}
),

unioned as (
    select * from google
    union all
    select * from trustpilot
    union all
    select * from review_files
)

select
    review_source || ':' || review_id as review_key,
    review_source,
    review_source as review_source_sk,
    review_id,
    person_sk,
    location,
    rating,
    rating <= 2 as is_negative,
    rating >= 4 as is_positive,
    created_at,
    cast(created_at as date) as created_date,
    has_reply,
    reply_at,
    case when has_reply and reply_at is not null
         then {{ seconds_between('created_at', 'reply_at') }} / 3600.0 end as reply_hours,
    comment_text is not null as has_comment,
    coalesce(st.sentiment_label, 'unknown') as sentiment_label,
    st.sentiment_score,
    st.language as text_language
from unioned as u
left join {{ ref('int_text_sentiment') }} as st on st.text_key = u.review_source || ':' || u.review_id
