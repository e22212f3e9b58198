{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_hubspot__contacts', 'contact_id', 'updated_at') }}
),

renamed as (
    select
        contact_id,
        email_hash,
        phone_hash,
        name_hash,
        lifecycle_stage,
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
    {{ hubspot_deleted_keys('contacts', 'base_hubspot__contacts', 'contact_id') }}
)

select
    r.*,
    d.contact_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.contact_id = r.contact_id
