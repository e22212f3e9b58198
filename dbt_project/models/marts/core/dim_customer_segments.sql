{# Segment history per person (SCD2 over int_customer_segments_monthly, docs/segments.md): one row per run of
   consecutive month ends with the same segment. valid_from = the day after the first month end of the run (a
   segment computed from data up to a month end is known from the next day on: no look-ahead), valid_to = the
   valid_from of the next run (exclusive; null = current). A fact dated d takes the row with
   valid_from <= d < valid_to; before a person's first month end there is none (KPI rows: segment 'new').
   segment_version_sk = person_sk || ':' || valid_from. #}
with monthly as (
    select
        m.*,
        row_number() over (partition by m.person_sk order by m.month_start)
        - row_number() over (partition by m.person_sk, m.segment order by m.month_start) as run_id
    from {{ ref('int_customer_segments_monthly') }} as m
),

runs as (
    select
        person_sk,
        segment,
        min(as_of_date) as first_as_of_date,
        max(as_of_date) as last_as_of_date,
        count(*) as months_in_segment
    from monthly
    group by person_sk, segment, run_id
),

dated as (
    select
        r.*,
        cast({{ dbt.dateadd('day', 1, 'r.first_as_of_date') }} as date) as valid_from
    from runs as r
)

select
    cast(d.person_sk || ':' || cast(d.valid_from as {{ dbt.type_string() }}) as {{ dbt.type_string() }}) as segment_version_sk,
    cast(d.person_sk as {{ dbt.type_string() }}) as person_sk,
    cast(d.segment as {{ dbt.type_string() }}) as segment,
    cast(s.persona_name as {{ dbt.type_string() }}) as persona_name,
    d.valid_from,
    lead(d.valid_from) over (partition by d.person_sk order by d.valid_from) as valid_to,
    lead(d.valid_from) over (partition by d.person_sk order by d.valid_from) is null as is_current,
    d.first_as_of_date,
    d.last_as_of_date,
    cast(d.months_in_segment as bigint) as months_in_segment
from dated as d
left join {{ ref('customer_segments') }} as s on s.segment = d.segment
