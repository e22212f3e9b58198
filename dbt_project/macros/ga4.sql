{# GA4 event_params access. list_filter(...)[1] is ~25x faster on DuckDB than unnest subqueries. #}
{% macro ga4_param_raw_int(key) %}{{ return(adapter.dispatch('ga4_param_raw_int', 'cx_warehouse')(key)) }}{% endmacro %}
{% macro duckdb__ga4_param_raw_int(key) -%}
    list_filter(event_params, lambda x: x.key = '{{ key }}')[1].value.int_value
{%- endmacro %}
{% macro default__ga4_param_raw_int(key) -%}
    (select p.value ->> 'int_value' from jsonb_array_elements(event_params) as p where p ->> 'key' = '{{ key }}' limit 1)
{%- endmacro %}

{% macro ga4_param_int(key) -%}
    try_cast({{ ga4_param_raw_int(key) }} as bigint)
{%- endmacro %}

{% macro ga4_param_str(key) %}{{ return(adapter.dispatch('ga4_param_str', 'cx_warehouse')(key)) }}{% endmacro %}
{% macro duckdb__ga4_param_str(key) -%}
    list_filter(event_params, lambda x: x.key = '{{ key }}')[1].value.string_value
{%- endmacro %}
{% macro default__ga4_param_str(key) -%}
    (select p.value ->> 'string_value' from jsonb_array_elements(event_params) as p where p ->> 'key' = '{{ key }}' limit 1)
{%- endmacro %}
