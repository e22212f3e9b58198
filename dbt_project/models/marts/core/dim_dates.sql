{# Calendar days, computed at build time from the data (docs/DECISIONLOG.md "Issue 14 - Calendar from the data"):
   from January 1 of the year of the earliest date in any source to December 31 of the year of the latest date or
   of the KPI window end (var kpi_window_end = the run's data interval end), whichever is later; the KPI window
   start (var kpi_window_start = CXW_HISTORY_START) extends it backwards the same way. No fixed years: history from
   2015 or a run in 2027 gets its calendar. Whole years, so the table only grows when a new year arrives and BI
   has the rest of the current year to plan against.
   Cheap: one min/max pass over the business-date columns of the staging models the build reads anyway (the
   vendors' technical update stamps are left out). Deterministic over (data, vars): an identical rebuild gives an
   identical calendar, and the vars are part of the build fingerprint (cxw/buildstate.py), so the no-op run stays
   a no-op. No data and no window: an empty calendar. #}
{%- set date_columns = {
    'stg_ga4__events': ['event_at'],
    'stg_odoo__sale_orders': ['ordered_at', 'committed_at', 'created_at'],
    'stg_odoo__stock_pickings': ['scheduled_at', 'deadline_at', 'done_at', 'created_at'],
    'stg_odoo__res_partners': ['created_at'],
    'stg_hubspot__contacts': ['created_at'],
    'stg_hubspot__deals': ['created_at', 'close_at'],
    'stg_hubspot__tickets': ['created_at', 'first_response_at', 'closed_at'],
    'stg_hubspot__feedback_submissions': ['submitted_at'],
    'stg_hubspot__email_events': ['occurred_at'],
    'stg_google_reviews__reviews': ['created_at', 'reply_at'],
    'stg_trustpilot__reviews': ['created_at', 'experienced_at', 'reply_at'],
} -%}
{%- set window_days = [] -%}
{%- for v in ('kpi_window_start', 'kpi_window_end') if var(v) -%}
    {%- do window_days.append("cast('" ~ var(v)[:10] ~ "' as date)") -%}
{%- endfor %}

with extents as (
    {%- for model, columns in date_columns.items() %}
    select
        {# least / greatest of one argument: Spark refuses it #}
        cast({{ 'least(' if columns | length > 1 }}{% for c in columns %}min({{ c }}){{ ', ' if not loop.last }}{% endfor %}{{ ')' if columns | length > 1 }} as date) as first_day,
        cast({{ 'greatest(' if columns | length > 1 }}{% for c in columns %}max({{ c }}){{ ', ' if not loop.last }}{% endfor %}{{ ')' if columns | length > 1 }} as date) as last_day
    from {{ ref(model) }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {%- for d in window_days %}
    union all
    select {{ d }}, {{ d }}
    {%- endfor %}
),

bounds as (
    select
        cast({{ dbt.date_trunc('year', 'min(first_day)') }} as date) as first_day,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('year', 1, dbt.date_trunc('year', 'max(last_day)'))) }} as date)
            as last_day
    from extents
),

days as (
    select cast(t.d as date) as date_day
    from bounds as b
    {{ join_day_series('b', 'first_day', 'last_day') }}
)

select
    date_day,
    extract(year from date_day) as year,
    extract(month from date_day) as month,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(date_trunc('week', date_day) as date) as week_start,
    {{ iso_day_of_week('date_day') }} as iso_day_of_week,
    {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend
from days
