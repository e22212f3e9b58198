with source as (
    {{ ranked_good_rows('base_odoo__stock_picking_types', 'picking_type_id', none) }}
),

renamed as (
    select
        picking_type_id,
        picking_type_name,
        picking_type_code,
        sequence_code,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
