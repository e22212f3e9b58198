{# Monthly cohorts (kpi-definitions "Commerce and loyalty"): cohort month = month of a customer's first confirmed
   order (all history); one row per cohort x months since first order (0 = the cohort month) up to the last month
   with orders. Customers are resolved persons (company partners excluded), as in kpi_period: a person's orders
   under any of their Odoo partners count for them; an order whose partner is not in the identity graph is a
   person of its own ('p_odoo_<partner_id>'). retained = cohort
   customers with a confirmed order in that month; revenue = their net revenue (amount_untaxed) that month.
   Cohorts are all-time (not cut by the KPI window): a cohort's later months need its first month. #}
with orders as (
    select
        case when o.person_sk = '-1' then 'p_odoo_' || cast(o.partner_id as {{ dbt.type_string() }}) else o.person_sk end as customer_id,
        cast({{ dbt.date_trunc('month', 'o.order_date') }} as date) as order_month,
        o.amount_untaxed
    from {{ ref('fct_orders') }} as o
    left join {{ ref('dim_customers') }} as c on c.person_sk = o.person_sk and o.person_sk <> '-1'
    where o.is_confirmed and o.order_date is not null
        and not coalesce(c.is_company, false)
),

first_orders as (
    select customer_id, min(order_month) as cohort_month
    from orders
    group by 1
),

cohort_sizes as (
    select cohort_month, count(*) as cohort_customers
    from first_orders
    group by 1
),

activity as (
    select
        f.cohort_month,
        o.order_month,
        count(distinct o.customer_id) as retained_customers,
        count(*) as orders,
        sum(o.amount_untaxed) as net_revenue
    from orders as o
    inner join first_orders as f on f.customer_id = o.customer_id
    group by 1, 2
),

months as (
    select distinct order_month as activity_month from orders
),

grid as (
    select c.cohort_month, m.activity_month, c.cohort_customers
    from cohort_sizes as c
    inner join months as m on m.activity_month >= c.cohort_month
)

select
    g.cohort_month,
    cast({{ dbt.datediff('g.cohort_month', 'g.activity_month', 'month') }} as integer) as months_since_first_order,
    g.activity_month,
    cast(g.cohort_customers as bigint) as cohort_customers,
    cast(coalesce(a.retained_customers, 0) as bigint) as retained_customers,
    cast(cast(coalesce(a.retained_customers, 0) as {{ type_double() }}) / g.cohort_customers as {{ type_double() }}) as retention_share,
    cast(coalesce(a.orders, 0) as bigint) as orders,
    cast(coalesce(a.net_revenue, 0) as {{ type_double() }}) as net_revenue,
    cast(sum(coalesce(a.net_revenue, 0)) over (
        partition by g.cohort_month order by g.activity_month
        rows between unbounded preceding and current row) as {{ type_double() }}) as cumulative_net_revenue
from grid as g
left join activity as a on a.cohort_month = g.cohort_month and a.order_month = g.activity_month
