with source as (
    select * from {{ source('odoo', 'product_category') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as category_id,
        {{ safe_cast_int('parent_id') }} as parent_category_id,
        cast(name as varchar) as category_name,
        cast(complete_name as varchar) as category_path,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_ts,
        {{ type_error_fields('odoo', 'product_category') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when category_id is null then 'missing_id' when _bad_ts then 'bad_timestamp' end as quarantine_reason
from typed
