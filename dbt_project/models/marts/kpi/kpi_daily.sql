{# One row per day x channel x segment x KPI with its counts; only days with n > 0. The answer-key KPIs come from
   int_kpi_day_counts; nps_customer_level (latest NPS response per customer and day) from int_kpi_customer_level_nps;
   open_backlog (tickets not closed at the end of the day - a stock: never sum it over days) from
   int_kpi_open_backlog, published like a count (value = numerator, no denominator). The value's scale comes from
   the KPI's row of the seed kpi_definitions (macro kpi_value).
   Segment / channel (docs/segments.md): the int_kpi_day_counts KPIs per day x segment (channel 'all') and per day x
   channel (segment 'all') as well as 'all' x 'all'; nps_customer_level and open_backlog are published for 'all'
   only (a person-level or stock KPI, not split by a fact's segment / channel). #}
with counts as (
    select kpi_date, channel, segment, kpi, numerator, denominator, n from {{ ref('int_kpi_day_counts') }}
    union all
    select period_start, 'all', 'all', kpi, numerator, denominator, n
    from {{ ref('int_kpi_customer_level_nps') }}
    where grain = 'day'
    union all
    select period_start, 'all', 'all', kpi, numerator, denominator, n
    from {{ ref('int_kpi_open_backlog') }}
    where grain = 'day'
)

select
    c.kpi_date,
    cast(c.channel as varchar) as channel,
    cast(c.segment as varchar) as segment,
    c.kpi,
    c.numerator,
    c.denominator,
    {{ kpi_value('d', 'c.numerator', 'c.denominator') }} as value,
    c.n,
    c.n < {{ var('low_sample_min') }} as is_low_sample
from counts as c
left join {{ ref('kpi_definitions') }} as d on d.kpi = c.kpi
where c.n > 0
