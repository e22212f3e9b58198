{# KPI vs target and industry benchmark (issue 19 point 3). One row per kpi_period row (grain, period, segment,
   channel) that has a target (seed kpi_targets, valid for the period's start) or a benchmark (seed kpi_benchmarks,
   industry = var benchmark_industry). met / missed follows the KPI's direction_of_good (seed kpi_definitions).
   A breach = a closed period (period_end <= the KPI window's end: a month still in progress is never a breach)
   whose value missed its target on a sample that is not low; cxw.alerts exports each breach once.
   Reads the presentation mart kpi_period (the one allowed exception of dag_rules presentation-marts-are-leaves:
   this table compares published values with targets, so it must read exactly what is published). #}
with periods as (
    select * from {{ ref('kpi_period') }}
),

window_end as (
    select max(period_end) as window_end from periods where grain = 'window'
),

targets as (
    select
        cast(kpi as {{ dbt.type_string() }}) as kpi,
        cast(grain as {{ dbt.type_string() }}) as grain,
        cast(coalesce(segment, 'all') as {{ dbt.type_string() }}) as segment,
        cast(coalesce(channel, 'all') as {{ dbt.type_string() }}) as channel,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(target_value as {{ type_double() }}) as target_value,
        cast(owner_role as {{ dbt.type_string() }}) as owner_role
    from {{ ref('kpi_targets') }}
),

benchmarks as (
    select
        cast(kpi as {{ dbt.type_string() }}) as kpi,
        cast(industry as {{ dbt.type_string() }}) as industry,
        cast(benchmark_value as {{ type_double() }}) as benchmark_value,
        cast(source_name as {{ dbt.type_string() }}) as source_name,
        cast(source_url as {{ dbt.type_string() }}) as source_url,
        cast(as_of_date as date) as as_of_date
    from {{ ref('kpi_benchmarks') }}
    where industry = '{{ var("benchmark_industry") }}'
),

joined as (
    select
        p.kpi,
        p.grain,
        p.period_start,
        p.period_end,
        p.segment,
        p.channel,
        p.value,
        p.n,
        p.is_low_sample,
        d.direction_of_good,
        t.target_value,
        t.owner_role,
        t.valid_from,
        t.valid_to,
        b.benchmark_value,
        b.industry,
        b.source_name,
        b.source_url,
        b.as_of_date,
        -- the window row grows with every run: never closed
        p.grain = 'month' and p.period_end <= w.window_end as is_period_closed
    from periods as p
    cross join window_end as w
    inner join {{ ref('kpi_definitions') }} as d on d.kpi = p.kpi
    left join targets as t
        on t.kpi = p.kpi and t.grain = p.grain and t.segment = p.segment and t.channel = p.channel
        and p.period_start >= t.valid_from and (t.valid_to is null or p.period_start < t.valid_to)
    left join benchmarks as b on b.kpi = p.kpi and p.segment = 'all' and p.channel = 'all'
    where t.kpi is not null or b.kpi is not null
),

judged as (
    select
        *,
        case
            when target_value is null or value is null then null
            when direction_of_good = 'higher' then value >= target_value
            else value <= target_value
        end as is_target_met,
        case
            when benchmark_value is null or value is null then null
            when direction_of_good = 'higher' then value >= benchmark_value
            else value <= benchmark_value
        end as is_benchmark_met
    from joined
)

select
    cast(kpi || '|' || grain || '|' || cast(period_start as {{ dbt.type_string() }}) || '|' || segment || '|' || channel
         as {{ dbt.type_string() }}) as target_key,
    cast(kpi as {{ dbt.type_string() }}) as kpi,
    cast(grain as {{ dbt.type_string() }}) as grain,
    period_start,
    period_end,
    cast(segment as {{ dbt.type_string() }}) as segment,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(value as {{ type_double() }}) as value,
    cast(n as bigint) as n,
    is_low_sample,
    cast(direction_of_good as {{ dbt.type_string() }}) as direction_of_good,
    target_value,
    cast(value - target_value as {{ type_double() }}) as gap_to_target,
    is_target_met,
    cast(owner_role as {{ dbt.type_string() }}) as target_owner_role,
    valid_from as target_valid_from,
    valid_to as target_valid_to,
    benchmark_value,
    cast(value - benchmark_value as {{ type_double() }}) as gap_to_benchmark,
    is_benchmark_met,
    cast(industry as {{ dbt.type_string() }}) as benchmark_industry,
    cast(source_name as {{ dbt.type_string() }}) as benchmark_source,
    cast(source_url as {{ dbt.type_string() }}) as benchmark_source_url,
    as_of_date as benchmark_as_of,
    coalesce(is_period_closed, false) as is_period_closed,
    coalesce(is_period_closed and not is_target_met and not is_low_sample, false) as is_breach
from judged
