-- One row per period x channel x segment x KPI in both KPI marts.
select 'day' as grain, kpi_date as period_start, channel, segment, kpi, count(*) as rows
from {{ ref('kpi_daily') }}
group by 1, 2, 3, 4, 5
having count(*) > 1
union all
select grain, period_start, channel, segment, kpi, count(*)
from {{ ref('kpi_period') }}
group by 1, 2, 3, 4, 5
having count(*) > 1
