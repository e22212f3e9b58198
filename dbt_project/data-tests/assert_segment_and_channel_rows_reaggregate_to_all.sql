-- Segments and channels partition the 'all' row (docs/segments.md): for every KPI row published per segment or per
-- channel, the segment rows of that day / period (channel 'all') sum to the 'all' row's numerator, denominator and
-- n, and so do the channel rows (segment 'all') - sums of counts, never averages of rates. A KPI split at all must
-- have its 'all' row. Returns the rows that break it.
with rows_ as (
    select 'day' as grain, kpi_date as period_start, channel, segment, kpi, numerator, denominator, n
    from {{ ref('kpi_daily') }}
    union all
    select grain, period_start, channel, segment, kpi, numerator, denominator, n
    from {{ ref('kpi_period') }}
),

parts as (
    select grain, period_start, kpi,
           case when segment <> 'all' then 'segment' else 'channel' end as dimension,
           sum(numerator) as numerator, sum(denominator) as denominator, sum(n) as n
    from rows_
    where (segment <> 'all') <> (channel <> 'all')
    group by 1, 2, 3, 4
),

totals as (
    select grain, period_start, kpi, numerator, denominator, n
    from rows_
    where segment = 'all' and channel = 'all'
)

select p.grain, p.period_start, p.kpi, p.dimension, p.numerator, t.numerator as all_numerator,
       p.denominator, t.denominator as all_denominator, p.n, t.n as all_n
from parts as p
left join totals as t on t.grain = p.grain and t.period_start = p.period_start and t.kpi = p.kpi
where t.n is null
    or p.n <> t.n
    or abs(coalesce(p.numerator, 0) - coalesce(t.numerator, 0)) > 1e-6 * greatest(1, abs(coalesce(t.numerator, 0)))
    or abs(coalesce(p.denominator, 0) - coalesce(t.denominator, 0)) > 1e-6 * greatest(1, abs(coalesce(t.denominator, 0)))
    or (p.denominator is null) <> (t.denominator is null)
union all
-- a row with both a segment and a channel is never published
select grain, period_start, kpi, 'both', numerator, null, denominator, null, n, null
from rows_
where segment <> 'all' and channel <> 'all'
