with source as (
    {{ ranked_good_rows('base_odoo__stock_pickings', 'picking_id', 'updated_at') }}
),

renamed as (
    select
        picking_id,
        picking_name,
        origin,
        order_id,
        partner_id,
        picking_type_id,
        state,
        scheduled_at,
        deadline_at,
        done_at,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
