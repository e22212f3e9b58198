with source as (
    {{ ranked_good_rows('base_hubspot__feedback_submissions', 'feedback_id', 'updated_at') }}
),

renamed as (
    select
        feedback_id,
        contact_id,
        survey_type,
        survey_channel,
        comment_text,
        cast(raw_score as integer) as score,
        -- HubSpot CES is 1-7 with 7 = easiest already; a reversed survey would be flipped here (8 - score)
        cast(raw_score as integer) as score_normalised,
        submitted_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
