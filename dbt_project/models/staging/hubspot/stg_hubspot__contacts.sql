with source as (
    {{ ranked_good_rows('base_hubspot__contacts', 'contact_id', 'updated_at') }}
),

renamed as (
    select
        contact_id,
        email_hash,
        phone_hash,
        name_hash,
        lifecycle_stage,
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
