-- Every KPI that kpi_daily / kpi_period publish has a definition in the seed kpi_definitions (kpi.kpi_dictionary).
select distinct p.kpi
from (
    select kpi from {{ ref('kpi_period') }}
    union all
    select kpi from {{ ref('kpi_daily') }}
) as p
left join {{ ref('kpi_definitions') }} as d on d.kpi = p.kpi
where d.kpi is null
