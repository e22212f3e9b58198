with source as (
    select * from {{ source('odoo', 'sale_order') }}
),

typed as (
    select
        -- ids
        try_cast(id as bigint) as order_id,
        cast(name as varchar) as order_name,
        try_cast(partner_id as bigint) as partner_id,
        try_cast(partner_invoice_id as bigint) as partner_invoice_id,
        try_cast(partner_shipping_id as bigint) as partner_shipping_id,
        try_cast(currency_id as bigint) as currency_id,
        try_cast(team_id as bigint) as team_id,
        try_cast(user_id as bigint) as user_id,
        try_cast(company_id as bigint) as company_id,
        -- strings / booleans
        cast(state as varchar) as state,
        coalesce(try_cast(locked as boolean), false) as is_locked,
        -- numerics
        try_cast(amount_untaxed as decimal(18, 2)) as amount_untaxed,
        try_cast(amount_tax as decimal(18, 2)) as amount_tax,
        try_cast(amount_total as decimal(18, 2)) as amount_total,
        -- timestamps
        {{ try_ts('date_order') }} as ordered_at,
        {{ try_ts('commitment_date') }} as committed_at,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        (date_order is not null and {{ try_ts('date_order') }} is null)
            or (write_date is not null and {{ try_ts('write_date') }} is null) as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select
    *,
    case
        when order_id is null then 'missing_id'
        when _bad_ts then 'bad_timestamp'
    end as quarantine_reason
from typed
