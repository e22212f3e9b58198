{# Open backlog (kpi-definitions "Support"): tickets not closed at period end - a STOCK, not a flow.
   A ticket is open at instant t when created_at < t and (closed_at is null or closed_at >= t).
   day:    at the end of that day (t = kpi_date + 1 day, 00:00 UTC);
   month:  at the end of the month, or at the window end when the window ends inside the month;
   window: at the window end.
   Month and window rows are the backlog of their last day, never a sum over days (summing a stock counts the same
   ticket once per day it stays open). Every day of the window gets a row (a day with no ticket event keeps the
   previous day's backlog); tickets created before the window start count in the backlog they still form.
   Computed as a running sum of +1 per creation day and -1 per closing day (a closing stamped before its creation
   counts at the creation), so the cost is linear in tickets + days, not tickets x days.
   numerator = open tickets, denominator null, n = open tickets. Window rows carry period_start null (kpi_period
   fills the window start, like int_kpi_customer_level_nps). #}
with tickets as (
    select
        created_at,
        case when closed_at is not null and closed_at < created_at then created_at else closed_at end as closed_at
    from {{ ref('fct_support_tickets') }}
    where created_at is not null
),

bounds as (
    -- one row (aggregate): the configured window, else the extent of all KPI data - the same bounds as kpi_period,
    -- so the window row is the backlog at the window's end even when tickets end earlier
    select
        coalesce({{ "cast('" ~ var('kpi_window_start') ~ "' as date)" if var('kpi_window_start') else 'cast(null as date)' }},
                 min(kpi_date)) as window_start,
        coalesce({{ "cast('" ~ var('kpi_window_end') ~ "' as date)" if var('kpi_window_end') else 'cast(null as date)' }},
                 cast(max(kpi_date) + interval '1 day' as date)) as window_end
    from {{ ref('int_kpi_day_counts') }}
),

days as (
    -- the days of [window_start, window_end)
    select cast(t.d as date) as kpi_date
    from (select window_start, {{ dbt.dateadd('day', -1, 'window_end') }} as last_day from bounds) as b
    {{ join_day_series('b', 'window_start', 'last_day') }}
),

changes as (
    select cast(created_at as date) as change_date, 1 as delta from tickets
    union all
    select cast(closed_at as date), -1 from tickets where closed_at is not null
),

-- changes before the window start fold into its first day; changes at or after the window end never count
daily_change as (
    select
        case when c.change_date < b.window_start then b.window_start else c.change_date end as kpi_date,
        sum(c.delta) as delta
    from changes as c
    cross join bounds as b
    where c.change_date < b.window_end
    group by 1
),

daily as (
    select
        d.kpi_date,
        sum(coalesce(c.delta, 0)) over (order by d.kpi_date rows between unbounded preceding and current row) as open_tickets
    from days as d
    left join daily_change as c on c.kpi_date = d.kpi_date
),

month_last_day as (
    select
        cast(date_trunc('month', kpi_date) as date) as period_start,
        max(kpi_date) as last_day
    from daily
    group by 1
)

select 'day' as grain, kpi_date as period_start, 'open_backlog' as kpi,
       cast(open_tickets as {{ type_double() }}) as numerator, cast(null as {{ type_double() }}) as denominator,
       cast(open_tickets as bigint) as n
from daily
union all
select 'month', m.period_start, 'open_backlog',
       cast(d.open_tickets as {{ type_double() }}), cast(null as {{ type_double() }}), cast(d.open_tickets as bigint)
from month_last_day as m
inner join daily as d on d.kpi_date = m.last_day
union all
select 'window', cast(null as date), 'open_backlog',
       cast(d.open_tickets as {{ type_double() }}), cast(null as {{ type_double() }}), cast(d.open_tickets as bigint)
from daily as d
where d.kpi_date = (select max(kpi_date) from daily)
