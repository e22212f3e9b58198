{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_hubspot__companies', 'company_id', 'updated_at') }}
),

renamed as (
    select
        company_id,
        company_name,
        company_domain,
        is_archived,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ hubspot_deleted_keys('companies', 'base_hubspot__companies', 'company_id') }}
)

select
    r.*,
    d.company_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.company_id = r.company_id
