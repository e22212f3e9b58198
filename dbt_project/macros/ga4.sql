{# GA4 event_params access: the value_field ('int_value', 'string_value', 'float_value', 'double_value') of the
   first param named `key`, as text (GA4 INT64 arrive as strings).
   DuckDB: event_params is a LIST of STRUCTs; list_filter(...)[1] is ~25x faster than unnest subqueries
   (docs/environment.md). PostgreSQL: the loader stores it as jsonb; a jsonpath query (no correlated subquery,
   no set-returning function) picks the element. #}
{% macro ga4_param(column, key, value_field) %}
    {%- if not modules.re.match('^[A-Za-z0-9_]+$', key) or not modules.re.match('^[a-z_]+$', value_field) -%}
        {{ exceptions.raise_compiler_error("ga4_param: refusing key " ~ key ~ " / field " ~ value_field) }}
    {%- endif -%}
    {{ return(adapter.dispatch('ga4_param', 'cx_warehouse')(column, key, value_field)) }}
{% endmacro %}
{% macro duckdb__ga4_param(column, key, value_field) -%}
    list_filter({{ column }}, lambda x: x.key = '{{ key }}')[1].value.{{ value_field }}
{%- endmacro %}
{% macro default__ga4_param(column, key, value_field) -%}
    (jsonb_path_query_first({{ column }}, '$[*] ? (@.key == "{{ key }}").value.{{ value_field }}') #>> '{}')
{%- endmacro %}

{# shorthand over event_params (int params are read as delivered and typed in base_ga4__events_typed, where a
   present value that does not parse quarantines the event) #}
{% macro ga4_param_str(key) -%}
    {{ ga4_param('event_params', key, 'string_value') }}
{%- endmacro %}
