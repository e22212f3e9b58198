{# KPIs per month and for the whole window. Additive KPIs are re-aggregated from the daily counts (sums of
   numerators and denominators, ratio recomputed); medians / p90 (quantile_cont) and customer KPIs over resolved
   persons are computed from the facts, since they cannot be re-aggregated. period_end is exclusive.
   open_backlog is a stock: its month / window rows are the backlog at the period's end (int_kpi_open_backlog: the
   last day of the month inside the window, the window's last day), never a sum of daily rows. The value's scale
   comes from the KPI's row of the seed kpi_definitions (macro kpi_value).
   Segment / channel (docs/segments.md): the additive KPIs per segment (channel 'all') and per channel (segment
   'all') as well as 'all', summed from int_kpi_day_counts' rows of that segment / channel; durations, customer
   KPIs, customer-level NPS and open_backlog are published for 'all' only.
   Numerators / denominators are summed exactly (macro exact_sum): a sum of doubles depends on the order the
   database adds them in, which parallel aggregation does not fix, and a rebuild must publish identical marts. #}
with day_counts as (
    select * from {{ ref('int_kpi_day_counts') }}
),

window_bounds as (
    -- always one row (aggregate): the configured window, else the extent of the data
    select
        coalesce({{ "cast('" ~ var('kpi_window_start') ~ "' as date)" if var('kpi_window_start') else 'cast(null as date)' }},
                 min(kpi_date)) as window_start,
        coalesce({{ "cast('" ~ var('kpi_window_end') ~ "' as date)" if var('kpi_window_end') else 'cast(null as date)' }},
                 cast(max(kpi_date) + interval '1 day' as date)) as window_end
    from day_counts
),

-- ---------------------------------------------------------------- additive KPIs
additive_month as (
    select
        'month' as grain,
        cast(date_trunc('month', kpi_date) as date) as period_start,
        channel,
        segment,
        kpi,
        {{ exact_sum('numerator') }} as numerator,
        {{ exact_sum('denominator') }} as denominator,
        sum(n) as n
    from day_counts
    group by 1, 2, 3, 4, 5
),

additive_window as (
    select
        'window' as grain,
        w.window_start as period_start,
        d.channel,
        d.segment,
        d.kpi,
        {{ exact_sum('d.numerator') }} as numerator,
        {{ exact_sum('d.denominator') }} as denominator,
        sum(d.n) as n
    from day_counts as d
    cross join window_bounds as w
    group by 1, 2, 3, 4, 5
),

-- ---------------------------------------------------------------- durations (median / p90 hours)
durations as (
    select 'review_reply_time' as measure, created_date as event_date, reply_hours as hours
    from {{ ref('fct_reviews') }}
    where has_reply and reply_hours is not null
    union all
    select 'first_response', created_date, first_response_hours
    from {{ ref('fct_support_tickets') }}
    where first_response_hours is not null
    union all
    select 'resolution', closed_date, resolution_hours
    from {{ ref('fct_support_tickets') }}
    where is_closed and resolution_hours is not null
),

durations_in_window as (
    select d.*, w.window_start
    from durations as d
    cross join window_bounds as w
    where d.event_date >= w.window_start and d.event_date < w.window_end
),

duration_stats as (
    select
        'month' as grain,
        cast(date_trunc('month', event_date) as date) as period_start,
        measure,
        {{ quantile('hours', 0.5) }} as median_h,
        {{ quantile('hours', 0.9) }} as p90_h,
        count(*) as n
    from durations_in_window
    group by 1, 2, 3
    union all
    select
        'window',
        window_start,
        measure,
        {{ quantile('hours', 0.5) }},
        {{ quantile('hours', 0.9) }},
        count(*)
    from durations_in_window
    group by 1, 2, 3
),

duration_kpis as (
    select grain, period_start, measure || '_median_h' as kpi, median_h as value, n from duration_stats
    union all
    select grain, period_start, measure || '_p90_h', p90_h, n from duration_stats
),

-- ---------------------------------------------------------------- customers (resolved persons)
customer_orders as (
    -- customer = resolved person (int_identity_links: all Odoo partners with one normalised e-mail are one person);
    -- an order whose partner is not in the identity graph (its partner row quarantined) is a person of its own, with
    -- the id the graph gives a partner without evidence. Company partners (dim_customers.is_company) are not persons.
    select
        case when o.person_sk = '-1' then 'p_odoo_' || cast(o.partner_id as varchar) else o.person_sk end as customer_id,
        o.order_date
    from {{ ref('fct_orders') }} as o
    left join {{ ref('dim_customers') }} as c on c.person_sk = o.person_sk and o.person_sk <> '-1'
    where o.is_confirmed
        and not coalesce(c.is_company, false)
),

first_orders as (
    select customer_id, cast(date_trunc('month', min(order_date)) as date) as first_month
    from customer_orders
    group by 1
),

orders_in_window as (
    select c.*, w.window_start
    from customer_orders as c
    cross join window_bounds as w
    where c.order_date >= w.window_start and c.order_date < w.window_end
),

per_customer as (
    select 'month' as grain, cast(date_trunc('month', order_date) as date) as period_start, customer_id, count(*) as orders
    from orders_in_window
    group by 1, 2, 3
    union all
    select 'window', window_start, customer_id, count(*)
    from orders_in_window
    group by 1, 2, 3
),

customer_stats as (
    select
        grain,
        period_start,
        sum(orders) as orders,
        count(*) as customers,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_customers
    from per_customer
    group by 1, 2
),

customer_months as (
    select distinct customer_id, cast(date_trunc('month', order_date) as date) as month_start
    from customer_orders
),

retention as (
    -- per month: customers active, of them new (first order that month), and customers active the month before.
    -- Counted per month first, then joined: joining the two months' customer lists row by row multiplied them
    -- (active x previously active rows per month: ≈30 s at scale M). Every calendar month (dim_dates), not only
    -- months with orders: a month without any order after one with customers has retention 0, not no row
    -- (sparse months of a long history).
    select
        m.month_start as period_start,
        coalesce(a.active, 0) as active,
        coalesce(a.new_customers, 0) as new_customers,
        coalesce(p.active, 0) as previous_active
    from (select distinct month_start from {{ ref('dim_dates') }}) as m
    left join (
        select
            e.month_start,
            count(distinct e.customer_id) as active,
            count(distinct case when f.first_month = e.month_start then e.customer_id end) as new_customers
        from customer_months as e
        left join first_orders as f on f.customer_id = e.customer_id
        group by 1
    ) as a on a.month_start = m.month_start
    left join (
        select month_start, count(distinct customer_id) as active
        from customer_months
        group by 1
    ) as p on p.month_start = cast(m.month_start - interval '1 month' as date)
),

customer_kpis as (
    select grain, period_start, 'all' as channel, 'all' as segment, 'purchase_frequency' as kpi,
           cast(orders as {{ type_double() }}) as numerator, cast(customers as {{ type_double() }}) as denominator, customers as n
    from customer_stats
    union all
    select grain, period_start, 'all', 'all', 'repeat_customer_rate',
           cast(repeat_customers as {{ type_double() }}), cast(customers as {{ type_double() }}), customers
    from customer_stats
    union all
    select 'month', r.period_start, 'all', 'all', 'retention_rate',
           cast(r.active - r.new_customers as {{ type_double() }}), cast(r.previous_active as {{ type_double() }}), r.previous_active
    from retention as r
    cross join window_bounds as w
    where r.period_start >= w.window_start and r.period_start < w.window_end
),

-- ---------------------------------------------------------------- customer-level NPS (not re-aggregable)
customer_level_nps as (
    select c.grain, coalesce(c.period_start, w.window_start) as period_start, 'all' as channel, 'all' as segment, c.kpi, c.numerator, c.denominator, c.n
    from {{ ref('int_kpi_customer_level_nps') }} as c
    cross join window_bounds as w
    where c.grain in ('month', 'window')
),

-- ---------------------------------------------------------------- open backlog (a stock: at the period's end)
open_backlog as (
    select b.grain, coalesce(b.period_start, w.window_start) as period_start, 'all' as channel, 'all' as segment, b.kpi, b.numerator, b.denominator, b.n
    from {{ ref('int_kpi_open_backlog') }} as b
    cross join window_bounds as w
    where b.grain in ('month', 'window')
),

-- ---------------------------------------------------------------- all rows
ratio_rows as (
    select r.grain, r.period_start, r.channel, r.segment, r.kpi, r.numerator, r.denominator,
           {{ kpi_value('d', 'r.numerator', 'r.denominator') }} as value, r.n
    from (
        select * from additive_month
        union all
        select * from additive_window
        union all
        select * from customer_kpis
        union all
        select * from customer_level_nps
        union all
        select * from open_backlog
    ) as r
    left join {{ ref('kpi_definitions') }} as d on d.kpi = r.kpi
),

all_rows as (
    select * from ratio_rows
    union all
    select grain, period_start, 'all', 'all', kpi, cast(null as {{ type_double() }}), cast(null as {{ type_double() }}), value, n from duration_kpis
)

select
    cast(a.grain as varchar) as grain,
    a.period_start,
    case when a.grain = 'month' then cast(a.period_start + interval '1 month' as date) else w.window_end end as period_end,
    cast(a.channel as varchar) as channel,
    cast(a.segment as varchar) as segment,
    a.kpi,
    a.numerator,
    a.denominator,
    a.value,
    cast(a.n as bigint) as n,
    a.n < {{ var('low_sample_min') }} as is_low_sample
from all_rows as a
cross join window_bounds as w
-- like kpi_daily, no rows without a sample; retention_rate keeps its months with S = 0 (value null)
where a.n > 0 or a.kpi = 'retention_rate'
