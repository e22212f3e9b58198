{# One row per day x channel x segment x KPI with its counts; only days with n > 0. The answer-key KPIs come from
   int_kpi_day_counts; nps_customer_level (latest NPS response per customer and day) from int_kpi_customer_level_nps;
   open_backlog (tickets not closed at the end of the day - a stock: never sum it over days) from
   int_kpi_open_backlog, published like a count (value = numerator, no denominator). The value's scale comes from
   the KPI's row of the seed kpi_definitions (macro kpi_value). #}
with counts as (
    select kpi_date, kpi, numerator, denominator, n from {{ ref('int_kpi_day_counts') }}
    union all
    select period_start, kpi, numerator, denominator, n
    from {{ ref('int_kpi_customer_level_nps') }}
    where grain = 'day'
    union all
    select period_start, kpi, numerator, denominator, n
    from {{ ref('int_kpi_open_backlog') }}
    where grain = 'day'
)

select
    c.kpi_date,
    cast('all' as varchar) as channel,
    cast('all' as varchar) as segment,
    c.kpi,
    c.numerator,
    c.denominator,
    {{ kpi_value('d', 'c.numerator', 'c.denominator') }} as value,
    c.n,
    c.n < {{ var('low_sample_min') }} as is_low_sample
from counts as c
left join {{ ref('kpi_definitions') }} as d on d.kpi = c.kpi
where c.n > 0
