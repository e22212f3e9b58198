{# The KPI dictionary BI users read: one row per KPI of kpi_daily / kpi_period, from the seed kpi_definitions. #}
select
    cast(kpi as {{ dbt.type_string() }}) as kpi,
    cast(label as {{ dbt.type_string() }}) as label,
    cast(unit as {{ dbt.type_string() }}) as unit,
    cast(scale as {{ dbt.type_string() }}) as scale,
    cast(range_min as {{ type_double() }}) as range_min,
    cast(range_max as {{ type_double() }}) as range_max,
    cast(formula as {{ dbt.type_string() }}) as formula,
    cast(direction_of_good as {{ dbt.type_string() }}) as direction_of_good,
    cast(aggregation as {{ dbt.type_string() }}) as aggregation,
    cast(is_headline as boolean) as is_headline
from {{ ref('kpi_definitions') }}
