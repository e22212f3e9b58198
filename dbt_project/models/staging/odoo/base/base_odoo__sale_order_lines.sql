with source as (
    select * from {{ source('odoo', 'sale_order_line') }}
),

typed as (
    select
        -- ids
        {{ safe_cast_int('id') }} as order_line_id,
        {{ safe_cast_int('order_id') }} as order_id,
        {{ safe_cast_int('product_id') }} as product_id,
        -- strings
        cast(display_type as varchar) as display_type,
        cast(state as varchar) as state,
        -- numerics
        {{ safe_cast_numeric('product_uom_qty') }} as quantity,
        {{ safe_cast_numeric('price_unit', 'decimal(18, 2)') }} as price_unit,
        {{ safe_cast_numeric('discount') }} as discount_pct,
        {{ safe_cast_numeric('price_subtotal', 'decimal(18, 2)') }} as price_subtotal,
        {{ safe_cast_numeric('price_tax') }} as price_tax,
        {{ safe_cast_numeric('price_total', 'decimal(18, 2)') }} as price_total,
        -- timestamps
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_ts,
        {{ type_error_fields('odoo', 'sale_order_line') }} as _type_error_fields,
        {%- set money = ['price_unit', 'price_subtotal', 'price_total'] %}
        {{ unparsable_fields([('price_unit', 'price_unit', safe_cast_numeric('price_unit')),
                              ('price_subtotal', 'price_subtotal', safe_cast_numeric('price_subtotal')),
                              ('price_total', 'price_total', safe_cast_numeric('price_total'))]) }} as _unparsable,
        {#- a number that does not fit decimal(18, 2): never NULL (DuckDB), never a failed build (PostgreSQL) #}
        {{ out_of_range_fields(decimal_range_checks(money)) }} as _out_of_range,
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
        when _out_of_range is not null then 'out_of_range: ' || _out_of_range
        when order_line_id is null then 'missing_id'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
