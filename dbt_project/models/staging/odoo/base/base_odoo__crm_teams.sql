with source as (
    select * from {{ source('odoo', 'crm_team') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as team_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as team_name,
        coalesce({{ safe_cast_bool('active') }}, true) as is_active,
        {{ type_error_fields('odoo', 'crm_team') }} as _type_error_fields,
        {{ unparsable_fields([('active', 'active', safe_cast_bool('active'))]) }} as _unparsable,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case
        when _type_error_fields is not null or _unparsable is not null
            then 'unparsable_value: ' || concat_ws(',', _type_error_fields, _unparsable)
        when team_id is null then 'missing_id' end as quarantine_reason
from typed
