-- open_backlog is a stock: a month row equals the day row of the month's last day in the window and the window row
-- equals the window's last day - never a sum over days. Returns the rows that break it.
with days as (
    select kpi_date, n from {{ ref('kpi_daily') }} where kpi = 'open_backlog'
),

periods as (
    select grain, period_start, period_end, n
    from {{ ref('kpi_period') }}
    where kpi = 'open_backlog'
),

window_end as (
    select max(period_end) as window_end from {{ ref('kpi_period') }} where grain = 'window'
)

select p.grain, p.period_start, p.n, d.n as last_day_n
from periods as p
cross join window_end as w
left join days as d
    on d.kpi_date = cast((case when p.period_end < w.window_end then p.period_end else w.window_end end)
                         - interval '1 day' as date)
where d.n is null or d.n <> p.n
