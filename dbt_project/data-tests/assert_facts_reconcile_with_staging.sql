-- Integration check (Fivetran style): every good staged row is one fact row; rows that did not reach staging are
-- in the quarantine or were collapsed duplicates (assert_load_ledger_balances). Records deleted at the source stay in
-- staging flagged is_deleted and are not current facts (docs/DECISIONLOG.md "Hard deletes"). Any row returned is a
-- mismatch.
with checks as (
    select 'survey_responses' as fact,
           (select count(*) from {{ ref('stg_hubspot__feedback_submissions') }} where not is_deleted) as staged,
           (select count(*) from {{ ref('fct_survey_responses') }}) as fact_rows
    union all
    select 'support_tickets',
           (select count(*) from {{ ref('stg_hubspot__tickets') }} where not is_deleted),
           (select count(*) from {{ ref('fct_support_tickets') }})
    union all
    select 'reviews',
           (select count(*) from {{ ref('stg_google_reviews__reviews') }} where not is_deleted)
               + (select count(*) from {{ ref('stg_trustpilot__reviews') }} where not is_deleted),
           (select count(*) from {{ ref('fct_reviews') }})
    union all
    select 'orders',
           (select count(*) from {{ ref('stg_odoo__sale_orders') }} where not is_deleted),
           (select count(*) from {{ ref('fct_orders') }})
    union all
    -- feedback rows: staged + quarantined + duplicates = extracted, per the ledger, summed over loads
    select 'feedback_ledger',
           (select sum(extracted) from {{ ref('load_ledger') }} where source = 'hubspot' and entity = 'feedback_submissions'),
           (select count(*) from {{ ref('fct_survey_responses') }})
               + (select count(*) from {{ ref('quarantine') }} where source = 'hubspot' and entity = 'feedback_submissions')
               + (select coalesce(sum(duplicates), 0) from {{ ref('load_ledger') }} where source = 'hubspot' and entity = 'feedback_submissions')
               + (select count(*) from {{ ref('stg_hubspot__feedback_submissions') }} where is_deleted)
    union all
    -- every detractor / CSAT 1-2 / review 1-2 is exactly one alert
    select 'detractor_alerts',
           (select count(*) from {{ ref('fct_survey_responses') }}
             where (survey_type = 'NPS' and score <= 6) or (survey_type = 'CSAT' and score <= 2))
               + (select count(*) from {{ ref('fct_reviews') }} where rating <= 2),
           (select count(*) from {{ ref('cx_detractor_alerts') }})
)

select * from checks where staged <> fact_rows
