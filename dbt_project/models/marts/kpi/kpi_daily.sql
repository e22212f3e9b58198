{# One row per day x channel x segment x KPI with its counts; only days with n > 0. #}
select
    kpi_date,
    cast('all' as varchar) as channel,
    cast('all' as varchar) as segment,
    kpi,
    numerator,
    denominator,
    {{ kpi_value('kpi', 'numerator', 'denominator') }} as value,
    n,
    n < {{ var('low_sample_min') }} as is_low_sample
from {{ ref('int_kpi_day_counts') }}
where n > 0
