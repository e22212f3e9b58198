{# Accounting per source / entity / load: extracted = staged + quarantined + duplicates (data-tests/assert_load_ledger_balances.sql). #}

{{ ledger_rows('odoo', 'res_country', 'base_odoo__res_countries', 'stg_odoo__res_countries') }}

union all

{{ ledger_rows('odoo', 'res_currency', 'base_odoo__res_currencies', 'stg_odoo__res_currencies') }}

union all

{{ ledger_rows('odoo', 'crm_team', 'base_odoo__crm_teams', 'stg_odoo__crm_teams') }}

union all

{{ ledger_rows('odoo', 'res_partner', 'base_odoo__res_partners', 'stg_odoo__res_partners') }}

union all

{{ ledger_rows('odoo', 'product_category', 'base_odoo__product_categories', 'stg_odoo__product_categories') }}

union all

{{ ledger_rows('odoo', 'product_template', 'base_odoo__product_templates', 'stg_odoo__product_templates') }}

union all

{{ ledger_rows('odoo', 'product_product', 'base_odoo__product_products', 'stg_odoo__product_products') }}

union all

{{ ledger_rows('odoo', 'sale_order', 'base_odoo__sale_orders', 'stg_odoo__sale_orders') }}

union all

{{ ledger_rows('odoo', 'sale_order_line', 'base_odoo__sale_order_lines', 'stg_odoo__sale_order_lines') }}

union all

{{ ledger_rows('odoo', 'stock_picking_type', 'base_odoo__stock_picking_types', 'stg_odoo__stock_picking_types') }}

union all

{{ ledger_rows('odoo', 'stock_picking', 'base_odoo__stock_pickings', 'stg_odoo__stock_pickings') }}

union all

{{ ledger_rows('hubspot', 'contacts', 'base_hubspot__contacts', 'stg_hubspot__contacts') }}

union all

{{ ledger_rows('hubspot', 'companies', 'base_hubspot__companies', 'stg_hubspot__companies') }}

union all

{{ ledger_rows('hubspot', 'deals', 'base_hubspot__deals', 'stg_hubspot__deals') }}

union all

{{ ledger_rows('hubspot', 'tickets', 'base_hubspot__tickets', 'stg_hubspot__tickets') }}

union all

{{ ledger_rows('hubspot', 'feedback_submissions', 'base_hubspot__feedback_submissions', 'stg_hubspot__feedback_submissions') }}

union all

{{ ledger_rows('hubspot', 'associations', 'base_hubspot__associations', 'stg_hubspot__associations') }}

union all

{{ ledger_rows('hubspot', 'email_events', 'base_hubspot__email_events', 'stg_hubspot__email_events') }}

union all

{{ ledger_rows('google_reviews', 'reviews', 'base_google_reviews__reviews', 'stg_google_reviews__reviews') }}

union all

{{ ledger_rows('trustpilot', 'reviews', 'base_trustpilot__reviews', 'stg_trustpilot__reviews') }}

union all

{{ ledger_rows('review_files', 'reviews', 'base_review_files__reviews', 'stg_review_files__reviews') }}

union all

{{ ledger_rows('ga4', 'events', 'base_ga4__events', 'stg_ga4__events') }}
