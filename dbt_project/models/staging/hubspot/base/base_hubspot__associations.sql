with source as (
    select * from {{ source('hubspot', 'associations') }}
),

typed as (
    select
        lower(cast(from_type as varchar)) as from_type,
        cast(from_id as varchar) as from_id,
        lower(cast(to_type as varchar)) as to_type,
        cast(to_id as varchar) as to_id,
        cast(type_id as varchar) as association_type_id,
        cast(label as varchar) as association_label,
        lower(cast(from_type as varchar)) || ':' || cast(from_id as varchar) || '->'
            || lower(cast(to_type as varchar)) || ':' || cast(to_id as varchar) || '#' || coalesce(cast(type_id as varchar), '')
            as association_id,
        _load_id,
        _record_seq,
        _extracted_at
    from source
)

select *,
    case when from_id is null or to_id is null then 'missing_id' end as quarantine_reason
from typed
