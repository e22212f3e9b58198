with source as (
    {{ ranked_good_rows('base_odoo__sale_orders', 'order_id', 'updated_at') }}
),

renamed as (
    select
        order_id,
        order_name,
        partner_id,
        partner_invoice_id,
        partner_shipping_id,
        currency_id,
        team_id,
        user_id,
        company_id,
        state,
        is_locked,
        amount_untaxed,
        amount_tax,
        amount_total,
        ordered_at,
        committed_at,
        created_at,
        updated_at,
        _load_id,
        _record_seq,
        _extracted_at
    from source
    where _version_rank = 1
)

select * from renamed
