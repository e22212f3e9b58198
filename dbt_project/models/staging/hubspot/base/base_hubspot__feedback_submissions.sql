{# The scale comes from hs_survey_type (kpi-definitions): NPS 0-10, CSAT 1-5, CES 1-7 (7 = easiest).
   Surveys listed in var ces_reversed_survey_ids use 1 = easiest and are flipped (8 - score) here. #}
with source as (
    select * from {{ source('hubspot', 'feedback_submissions') }}
),

typed as (
    select
        -- ids
        cast(id as varchar) as feedback_id,
        cast(properties__hs_contact_id as varchar) as contact_id,
        -- strings
        upper(trim(cast(properties__hs_survey_type as varchar))) as survey_type,
        cast(properties__hs_survey_channel as varchar) as survey_channel,
        cast(properties__hs_content as varchar) as comment_text,
        cast(properties__hs_value as varchar) as raw_value,
        -- numerics
        {{ try_num('properties__hs_value') }} as raw_score,
        -- timestamps
        coalesce({{ try_ts_utc('properties__hs_submission_timestamp') }}, {{ try_ts_utc('createdAt') }}) as submitted_at,
        {{ try_ts_utc('updatedAt') }} as updated_at,
        (nullif(properties__hs_submission_timestamp, '') is not null
            and {{ try_ts_utc('properties__hs_submission_timestamp') }} is null)
            or (updatedAt is not null and {{ try_ts_utc('updatedAt') }} is null)
            -- createdAt is submitted_at's fallback: present, it parses in full (not only when it is used)
            or ({{ is_present('createdAt') }} and {{ try_ts_utc('createdAt') }} is null) as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
),

scaled as (
    select
        *,
        case survey_type when 'NPS' then 0 when 'CSAT' then 1 when 'CES' then 1 end as scale_min,
        case survey_type when 'NPS' then 10 when 'CSAT' then 5 when 'CES' then 7 end as scale_max
    from typed
)

select
    *,
    case
        when feedback_id is null or feedback_id = '' then 'missing_id'
        when _bad_ts then 'bad_timestamp'
        when raw_score is null then 'score_not_numeric'
        when scale_min is null then 'survey_type_unknown'
        when raw_score <> floor(raw_score) or raw_score < scale_min or raw_score > scale_max then 'score_out_of_range'
    end as quarantine_reason
from scaled
