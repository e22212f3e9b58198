with source as (
    {{ ranked_good_rows('base_odoo__res_countries', 'country_id', none) }}
),

renamed as (
    select
        country_id,
        country_code,
        country_name,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
