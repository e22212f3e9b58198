with source as (
    select * from {{ source('odoo', 'crm_team') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as team_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as team_name,
        coalesce({{ safe_cast_bool('active') }}, true) as is_active,
        {{ type_error_fields('odoo', 'crm_team') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when team_id is null then 'missing_id' end as quarantine_reason
from typed
