with source as (
    select * from {{ source('odoo', 'crm_team') }}
),

typed as (
    select
        try_cast(id as bigint) as team_id,
        coalesce({{ json_text('name', 'en_US') }}, cast(name as varchar)) as team_name,
        coalesce(try_cast(active as boolean), true) as is_active,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *, case when team_id is null then 'missing_id' end as quarantine_reason
from typed
