with source as (
    select * from {{ source('odoo', 'sale_order_line') }}
),

typed as (
    select
        -- ids
        try_cast(id as bigint) as order_line_id,
        try_cast(order_id as bigint) as order_id,
        try_cast(product_id as bigint) as product_id,
        -- strings
        cast(display_type as varchar) as display_type,
        cast(state as varchar) as state,
        -- numerics
        try_cast(product_uom_qty as double) as quantity,
        try_cast(price_unit as decimal(18, 2)) as price_unit,
        try_cast(discount as double) as discount_pct,
        try_cast(price_subtotal as decimal(18, 2)) as price_subtotal,
        try_cast(price_tax as double) as price_tax,
        try_cast(price_total as decimal(18, 2)) as price_total,
        -- timestamps
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when order_line_id is null then 'missing_id'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
