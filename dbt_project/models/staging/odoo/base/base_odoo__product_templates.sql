with source as (
    select * from {{ source('odoo', 'product_template') }}
),

typed as (
    select
        try_cast(id as bigint) as product_template_id,
        try_cast(categ_id as bigint) as category_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as product_name,
        cast(detailed_type as varchar) as detailed_type,
        try_cast(list_price as decimal(18, 2)) as list_price,
        coalesce(try_cast(sale_ok as boolean), true) as is_sellable,
        coalesce(try_cast(active as boolean), true) as is_active,
        {{ try_ts('create_date') }} as created_at,
        {{ try_ts('write_date') }} as updated_at,
        write_date is not null and {{ try_ts('write_date') }} is null as _bad_ts,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case when product_template_id is null then 'missing_id' when _bad_ts then 'bad_timestamp' end as quarantine_reason
from typed
