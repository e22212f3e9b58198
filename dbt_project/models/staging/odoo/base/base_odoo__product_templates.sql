with source as (
    select * from {{ source('odoo', 'product_template') }}
),

typed as (
    select
        {{ safe_cast_int('id') }} as product_template_id,
        {{ safe_cast_int('categ_id') }} as category_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as product_name,
        cast(detailed_type as varchar) as detailed_type,
        {{ safe_cast_numeric('list_price', 'decimal(18, 2)') }} as list_price,
        coalesce({{ safe_cast_bool('sale_ok') }}, true) as is_sellable,
        coalesce({{ safe_cast_bool('active') }}, true) as is_active,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_ts,
        {{ type_error_fields('odoo', 'product_template') }} as _type_error_fields,
        {{ unparsable_fields([('sale_ok', 'sale_ok', safe_cast_bool('sale_ok')), ('active', 'active', safe_cast_bool('active')),
                              ('list_price', 'list_price', safe_cast_numeric('list_price'))]) }} as _unparsable,
        {#- a number that does not fit decimal(18, 2): never NULL (DuckDB), never a failed build (PostgreSQL) #}
        {{ out_of_range_fields(decimal_range_checks(['list_price'])) }} as _out_of_range,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case
        when _type_error_fields is not null or _unparsable is not null
            then 'unparsable_value: ' || concat_ws(',', _type_error_fields, _unparsable)
        when _out_of_range is not null then 'out_of_range: ' || _out_of_range
        when product_template_id is null then 'missing_id' when _bad_ts then 'bad_timestamp' end as quarantine_reason
from typed
