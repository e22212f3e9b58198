with source as (
    {{ ranked_good_rows('base_hubspot__deals', 'deal_id', 'updated_at') }}
),

renamed as (
    select
        deal_id,
        deal_name,
        deal_stage,
        pipeline,
        amount,
        close_at,
        is_archived,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
