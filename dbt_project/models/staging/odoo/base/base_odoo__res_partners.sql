with source as (
    select * from {{ source('odoo', 'res_partner') }}
),

typed as (
    select
        -- ids
        {{ safe_cast_int('id') }} as partner_id,
        {{ safe_cast_int('country_id') }} as country_id,
        -- pii: salted hashes of the normalised values; plaintext never leaves this query
        {{ hash_pii(normalize_email('email')) }} as email_hash,
        {{ hash_pii(normalize_phone('phone')) }} as phone_hash,
        {{ hash_pii(normalize_name('name')) }} as name_hash,
        -- strings
        cast(type as varchar) as partner_type,
        cast(city as varchar) as city,
        -- numerics / booleans
        {{ safe_cast_int('customer_rank', 'integer') }} as customer_rank,
        coalesce({{ safe_cast_bool('is_company') }}, false) as is_company,
        coalesce({{ safe_cast_bool('active') }}, true) as is_active,
        -- timestamps (naive UTC in Odoo)
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        create_date is not null and {{ try_ts('create_date') }} is null as _bad_create,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_write,
        {{ type_error_fields('odoo', 'res_partner') }} as _type_error_fields,
        {{ unparsable_fields([('is_company', 'is_company', safe_cast_bool('is_company')), ('active', 'active', safe_cast_bool('active')), ('customer_rank', 'customer_rank', safe_cast_int('customer_rank', 'integer'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when _type_error_fields is not null or _unparsable is not null
            then 'unparsable_value: ' || concat_ws(',', _type_error_fields, _unparsable)
        when partner_id is null then 'missing_id'
        when _bad_create or _bad_write then 'bad_timestamp'
    end as quarantine_reason
from typed
