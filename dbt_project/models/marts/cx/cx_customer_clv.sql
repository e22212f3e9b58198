{# Historical CLV (kpi-definitions): lifetime net revenue (sum of amount_untaxed of confirmed orders) per resolved
   person with at least one confirmed order; Odoo company partners are not persons and are excluded. All history,
   not the KPI window. No predictive CLV is published. #}
with orders as (
    select person_sk, order_id, ordered_at, order_date, amount_untaxed, amount_total
    from {{ ref('fct_orders') }}
    where is_confirmed and person_sk <> '-1'
),

customers as (
    select person_sk from {{ ref('dim_customers') }} where not is_company and person_sk <> '-1'
),

per_person as (
    select
        o.person_sk,
        min(o.ordered_at) as first_order_at,
        max(o.ordered_at) as last_order_at,
        count(*) as confirmed_orders,
        count(distinct {{ dbt.date_trunc('month', 'o.order_date') }}) as active_months,
        sum(o.amount_untaxed) as lifetime_net_revenue,
        sum(o.amount_total) as lifetime_gross_revenue
    from orders as o
    inner join customers as c on c.person_sk = o.person_sk
    group by 1
)

select
    person_sk,
    cast({{ dbt.date_trunc('month', 'first_order_at') }} as date) as cohort_month,
    first_order_at,
    last_order_at,
    confirmed_orders,
    active_months,
    confirmed_orders >= 2 as is_repeat_customer,
    cast(lifetime_net_revenue as {{ type_double() }}) as historical_clv,
    cast(lifetime_net_revenue as {{ type_double() }}) as lifetime_net_revenue,
    cast(lifetime_gross_revenue as {{ type_double() }}) as lifetime_gross_revenue,
    cast(lifetime_net_revenue as {{ type_double() }}) / confirmed_orders as average_order_value,
    {{ dbt.datediff('first_order_at', 'last_order_at', 'day') }} as tenure_days,
    ntile(10) over (order by lifetime_net_revenue desc, person_sk asc) as clv_decile
from per_person
