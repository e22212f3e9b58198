with source as (
    select * from {{ source('odoo', 'res_currency') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as currency_id,
        cast(name as varchar) as currency_code,
        cast(symbol as varchar) as currency_symbol,
        {{ type_error_fields('odoo', 'res_currency') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when currency_id is null then 'missing_id' end as quarantine_reason
from typed
