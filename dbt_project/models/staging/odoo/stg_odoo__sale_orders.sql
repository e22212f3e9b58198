{# Hard deletes at the source: every record stays, flagged is_deleted / deleted_detected_at (macros/hard_deletes.sql);
   current-state marts filter on not is_deleted. #}
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
),

deleted as (
    {{ odoo_deleted_keys('sale_order', 'base_odoo__sale_orders', 'order_id') }}
)

select
    r.*,
    d.order_id is not null as is_deleted,
    d.deleted_detected_at
from renamed as r
left join deleted as d
    on d.order_id = r.order_id
