{# value of a KPI row from its counts (contracts.md section 5) #}
{% macro kpi_value(kpi_col, num, den) -%}
    case
        when {{ kpi_col }} in ({{ "'" ~ var('count_kpis') | join("', '") ~ "'" }}) then cast({{ num }} as {{ type_double() }})
        when {{ den }} is null or {{ den }} = 0 then null
        when {{ kpi_col }} in ({{ "'" ~ var('pct_kpis') | join("', '") ~ "'" }}) then 100.0 * {{ num }} / {{ den }}
        else cast({{ num }} as {{ type_double() }}) / {{ den }}
    end
{%- endmacro %}

{# true when a date column lies in the configured KPI window (always true when no window is set) #}
{% macro in_kpi_window(date_col) -%}
    {%- if var('kpi_window_start') -%}({{ date_col }} >= cast('{{ var("kpi_window_start") }}' as date)){%- else -%}true{%- endif %}
    and {% if var('kpi_window_end') -%}({{ date_col }} < cast('{{ var("kpi_window_end") }}' as date)){%- else -%}true{%- endif -%}
{%- endmacro %}
