{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
with source as (
    {{ ranked_good_rows('base_odoo__res_partners', 'partner_id', 'updated_at') }}
),

renamed as (
    select
        partner_id,
        country_id,
        email_hash,
        phone_hash,
        name_hash,
        partner_type,
        city,
        customer_rank,
        is_company,
        is_active,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
),

deleted as (
    {{ odoo_deleted_keys('res_partner', 'base_odoo__res_partners', 'partner_id') }}
)

select
    r.*,
    d.partner_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.partner_id = r.partner_id
