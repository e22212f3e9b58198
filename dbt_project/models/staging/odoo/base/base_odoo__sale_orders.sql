with source as (
    select * from {{ source('odoo', 'sale_order') }}
),

typed as (
    select
        -- ids
        {{ safe_cast_int('id') }} as order_id,
        cast(name as varchar) as order_name,
        {{ safe_cast_int('partner_id') }} as partner_id,
        {{ safe_cast_int('partner_invoice_id') }} as partner_invoice_id,
        {{ safe_cast_int('partner_shipping_id') }} as partner_shipping_id,
        {{ safe_cast_int('currency_id') }} as currency_id,
        {{ safe_cast_int('team_id') }} as team_id,
        {{ safe_cast_int('user_id') }} as user_id,
        {{ safe_cast_int('company_id') }} as company_id,
        -- strings / booleans
        cast(state as varchar) as state,
        coalesce({{ safe_cast_bool('locked') }}, false) as is_locked,
        -- numerics
        {{ safe_cast_numeric('amount_untaxed', 'decimal(18, 2)') }} as amount_untaxed,
        {{ safe_cast_numeric('amount_tax', 'decimal(18, 2)') }} as amount_tax,
        {{ safe_cast_numeric('amount_total', 'decimal(18, 2)') }} as amount_total,
        -- timestamps
        {{ try_ts('date_order') }} as ordered_at,
        {{ try_ts('commitment_date') }} as committed_at,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        (date_order is not null and {{ try_ts('date_order') }} is null)
            or (write_date is not null and {{ try_ts('write_date') }} is null) as _bad_ts,
        {{ type_error_fields('odoo', 'sale_order') }} as _type_error_fields,
        {%- set money = ['amount_untaxed', 'amount_tax', 'amount_total'] %}
        {{ unparsable_fields([('locked', 'locked', safe_cast_bool('locked')),
                              ('amount_untaxed', 'amount_untaxed', safe_cast_numeric('amount_untaxed')),
                              ('amount_tax', 'amount_tax', safe_cast_numeric('amount_tax')),
                              ('amount_total', 'amount_total', safe_cast_numeric('amount_total'))]) }} as _unparsable,
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
        when order_id is null then 'missing_id'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
