with source as (
    select * from {{ source('odoo', 'res_currency') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as currency_id,
        cast(name as varchar) as currency_code,
        cast(symbol as varchar) as currency_symbol,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case when currency_id is null then 'missing_id' end as quarantine_reason
from typed
