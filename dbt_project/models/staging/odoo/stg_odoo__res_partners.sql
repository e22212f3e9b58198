with source as (
    {{ ranked_good_rows('base_odoo__res_partners', 'partner_id', 'updated_at') }}
),

renamed as (
    select
        partner_id,
        country_id,
        email_hash,
        phone_hash,
        name_hash,
        partner_type,
        city,
        customer_rank,
        is_company,
        is_active,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
