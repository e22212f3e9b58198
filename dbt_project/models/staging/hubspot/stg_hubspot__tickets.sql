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
)

select * from renamed
