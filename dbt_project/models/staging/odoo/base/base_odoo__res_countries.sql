with source as (
    select * from {{ source('odoo', 'res_country') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as country_id,
        cast(code as varchar) as country_code,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as country_name,
        {{ type_error_fields('odoo', 'res_country') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when country_id is null then 'missing_id' end as quarantine_reason
from typed
