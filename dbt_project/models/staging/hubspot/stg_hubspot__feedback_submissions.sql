{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
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
),

deleted as (
    {{ hubspot_deleted_keys('feedback_submissions', 'base_hubspot__feedback_submissions', 'feedback_id') }}
)

select
    r.*,
    d.feedback_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.feedback_id = r.feedback_id
