with source as (
    select * from {{ source('odoo', 'res_partner') }}
),

typed as (
    select
        -- ids
        try_cast(id as bigint) as partner_id,
        try_cast(country_id as bigint) as country_id,
        -- pii: salted hashes of the normalised values; plaintext never leaves this query
        {{ hash_pii(normalize_email('email')) }} as email_hash,
        {{ hash_pii(normalize_phone('phone')) }} as phone_hash,
        {{ hash_pii(normalize_name('name')) }} as name_hash,
        -- strings
        cast(type as varchar) as partner_type,
        cast(city as varchar) as city,
        -- numerics / booleans
        try_cast(customer_rank as integer) as customer_rank,
        coalesce(try_cast(is_company as boolean), false) as is_company,
        coalesce(try_cast(active as boolean), true) as is_active,
        -- timestamps (naive UTC in Odoo)
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        create_date is not null and {{ try_ts('create_date') }} is null as _bad_create,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_write,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when partner_id is null then 'missing_id'
        when _bad_create or _bad_write then 'bad_timestamp'
    end as quarantine_reason
from typed
