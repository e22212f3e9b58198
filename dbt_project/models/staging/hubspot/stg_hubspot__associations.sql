with source as (
    {{ ranked_good_rows('base_hubspot__associations', 'association_id', none) }}
),

renamed as (
    select
        association_id,
        from_type,
        from_id,
        to_type,
        to_id,
        association_type_id,
        association_label,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
