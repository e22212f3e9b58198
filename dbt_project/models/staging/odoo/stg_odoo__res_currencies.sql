with source as (
    {{ ranked_good_rows('base_odoo__res_currencies', 'currency_id', none) }}
),

renamed as (
    select
        currency_id,
        currency_code,
        currency_symbol,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
