with source as (
    select * from {{ source('odoo', 'stock_picking') }}
),

typed as (
    select
        -- ids
        {{ safe_cast_int('id') }} as picking_id,
        cast(name as varchar) as picking_name,
        cast(origin as varchar) as origin,
        {{ safe_cast_int('sale_id') }} as order_id,
        {{ safe_cast_int('partner_id') }} as partner_id,
        {{ safe_cast_int('picking_type_id') }} as picking_type_id,
        -- strings
        cast(state as varchar) as state,
        -- timestamps
        {{ try_ts('scheduled_date') }} as scheduled_at,
        {{ try_ts('date_deadline') }} as deadline_at,
        {{ try_ts('date_done') }} as done_at,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        (date_done is not null and {{ try_ts('date_done') }} is null)
            or (scheduled_date is not null and {{ try_ts('scheduled_date') }} is null)
            or (write_date is not null and {{ try_ts('write_date') }} is null) as _bad_ts,
        {{ type_error_fields('odoo', 'stock_picking') }} as _type_error_fields,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when _type_error_fields is not null then 'unparsable_value: ' || _type_error_fields
        when picking_id is null then 'missing_id'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
