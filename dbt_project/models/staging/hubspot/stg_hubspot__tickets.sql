{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_hubspot__tickets', 'ticket_id', 'updated_at') }}
),

renamed as (
    select
        ticket_id,
        subject,
        pipeline_stage,
        priority,
        category,
        is_archived,
        created_at,
        first_response_at,
        closed_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ hubspot_deleted_keys('tickets', 'base_hubspot__tickets', 'ticket_id') }}
)

select
    r.*,
    d.ticket_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.ticket_id = r.ticket_id
