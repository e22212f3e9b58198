with source as (
    {{ ranked_good_rows('base_hubspot__companies', 'company_id', 'updated_at') }}
),

renamed as (
    select
        company_id,
        company_name,
        company_domain,
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
