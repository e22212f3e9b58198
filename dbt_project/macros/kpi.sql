{# value of a KPI row from its counts (contracts.md section 5) and its definition: `definition` is the alias of the
   row of the seed kpi_definitions joined on the KPI name. Count and stock KPIs publish the numerator; ratios
   scale_factor * numerator / denominator (100 for percent and NPS points, 1 otherwise), null without a denominator. #}
{% macro kpi_value(definition, num, den) -%}
    case
        when {{ definition }}.aggregation in ('count', 'stock') then cast({{ num }} as {{ type_double() }})
        when {{ den }} is null or {{ den }} = 0 then null
        else {{ definition }}.scale_factor * {{ num }} / {{ den }}
    end
{%- endmacro %}

{# the same for a KPI held in a column rather than a row (kpi_journey_stage, cx marts): scale_factor of the seed
   row of `kpi_name` (a literal KPI name) x num / den, null without a denominator #}
{% macro kpi_scaled(kpi_name, num, den) -%}
    case when {{ den }} is null or {{ den }} = 0 then null
         else (select kd.scale_factor from {{ ref('kpi_definitions') }} as kd where kd.kpi = '{{ kpi_name }}') * {{ num }} / {{ den }} end
{%- endmacro %}

{# true when a date column lies in the configured KPI window (always true when no window is set) #}
{% macro in_kpi_window(date_col) -%}
    {%- if var('kpi_window_start') -%}({{ date_col }} >= cast('{{ var("kpi_window_start") }}' as date)){%- else -%}true{%- endif %}
    and {% if var('kpi_window_end') -%}({{ date_col }} < cast('{{ var("kpi_window_end") }}' as date)){%- else -%}true{%- endif -%}
{%- endmacro %}
