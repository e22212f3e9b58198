with source as (
    {{ ranked_good_rows('base_odoo__crm_teams', 'team_id', none) }}
),

renamed as (
    select
        team_id,
        team_name,
        is_active,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
