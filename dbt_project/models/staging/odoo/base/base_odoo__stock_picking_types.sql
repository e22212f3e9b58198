with source as (
    select * from {{ source('odoo', 'stock_picking_type') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as picking_type_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as picking_type_name,
        cast(code as varchar) as picking_type_code,
        cast(sequence_code as varchar) as sequence_code,
        {{ type_error_fields('odoo', 'stock_picking_type') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when picking_type_id is null then 'missing_id' end as quarantine_reason
from typed
