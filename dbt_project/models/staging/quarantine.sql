{# Every distinct raw record that failed typing, with its reason; nothing is dropped silently. A record re-read by a
   later load is one row (its latest delivery), the other copies are duplicates in load_ledger
   (macros/staging_helpers.sql quarantine_rows). #}
{{ config(materialized='table') }}

{{ quarantine_rows('odoo', 'res_country', 'base_odoo__res_countries', "country_id") }}

union all

{{ quarantine_rows('odoo', 'res_currency', 'base_odoo__res_currencies', "currency_id") }}

union all

{{ quarantine_rows('odoo', 'crm_team', 'base_odoo__crm_teams', "team_id") }}

union all

{{ quarantine_rows('odoo', 'res_partner', 'base_odoo__res_partners', "partner_id") }}

union all

{{ quarantine_rows('odoo', 'product_category', 'base_odoo__product_categories', "category_id") }}

union all

{{ quarantine_rows('odoo', 'product_template', 'base_odoo__product_templates', "product_template_id") }}

union all

{{ quarantine_rows('odoo', 'product_product', 'base_odoo__product_products', "product_id") }}

union all

{{ quarantine_rows('odoo', 'sale_order', 'base_odoo__sale_orders', "order_id") }}

union all

{{ quarantine_rows('odoo', 'sale_order_line', 'base_odoo__sale_order_lines', "order_line_id") }}

union all

{{ quarantine_rows('odoo', 'stock_picking_type', 'base_odoo__stock_picking_types', "picking_type_id") }}

union all

{{ quarantine_rows('odoo', 'stock_picking', 'base_odoo__stock_pickings', "picking_id") }}

union all

{{ quarantine_rows('hubspot', 'contacts', 'base_hubspot__contacts', "contact_id") }}

union all

{{ quarantine_rows('hubspot', 'companies', 'base_hubspot__companies', "company_id") }}

union all

{{ quarantine_rows('hubspot', 'deals', 'base_hubspot__deals', "deal_id") }}

union all

{{ quarantine_rows('hubspot', 'tickets', 'base_hubspot__tickets', "ticket_id") }}

union all

{{ quarantine_rows('hubspot', 'feedback_submissions', 'base_hubspot__feedback_submissions', "feedback_id") }}

union all

{{ quarantine_rows('hubspot', 'associations', 'base_hubspot__associations', "association_id") }}

union all

{{ quarantine_rows('hubspot', 'email_events', 'base_hubspot__email_events', "email_event_id") }}

union all

{{ quarantine_rows('google_reviews', 'reviews', 'base_google_reviews__reviews', "review_id") }}

union all

{# a review without id: identified by who wrote it, where and when (an edited star rating or a reply is the same review) #}
{{ quarantine_rows('trustpilot', 'reviews', 'base_trustpilot__reviews', "review_id",
                   identity_cols=['businessUnit__id', 'consumer__id', 'createdAt']) }}

union all

{# site and review id name a review file row (a row without id: its site, file row and content identify it) #}
{{ quarantine_rows('review_files', 'reviews', 'base_review_files__reviews', "review_key",
                   identity_cols=['site', 'file_sha256', 'file_row']) }}

union all

{# no key: content identity; the typed table holds the current delivery of each export day only (exact duplicates
   collapsed: the other copies are duplicates in the ledger) #}
{{ quarantine_rows('ga4', 'events', 'base_ga4__events_typed',
                   record_id="cast(b._load_id as varchar) || ':' || cast(b._record_seq as varchar)") }}
