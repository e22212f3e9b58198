-- Month rows of additive KPIs equal the sums of their day rows (counts re-aggregate, ratios are never averaged).
-- nps_customer_level is not additive (latest response per customer per period) and is excluded; so is open_backlog,
-- a stock (tickets open at the period's end; assert_open_backlog_is_a_stock checks it). Per channel x segment:
-- the segment and channel rows re-aggregate over days like the 'all' rows.
with days as (
    select cast(date_trunc('month', kpi_date) as date) as period_start, channel, segment, kpi,
           sum(numerator) as numerator, sum(n) as n
    from {{ ref('kpi_daily') }}
    where kpi not in ('nps_customer_level', 'open_backlog')
    group by 1, 2, 3, 4
)
select m.period_start, m.channel, m.segment, m.kpi, m.numerator, d.numerator as day_numerator, m.n, d.n as day_n
from {{ ref('kpi_period') }} as m
inner join days as d
    on d.period_start = m.period_start and d.kpi = m.kpi and d.channel = m.channel and d.segment = m.segment
where m.grain = 'month'
  and (abs(m.numerator - d.numerator) > 1e-6 * greatest(1, abs(d.numerator)) or m.n <> d.n)
