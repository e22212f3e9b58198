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

{# the whole `value` of the first param named `key` (DuckDB: the STRUCT; PostgreSQL: the jsonb object), read once;
   ga4_param_any_field picks its fields. #}
{% macro ga4_param_value(column, key) %}
    {%- if not modules.re.match('^[A-Za-z0-9_]+$', key) -%}
        {{ exceptions.raise_compiler_error("ga4_param_value: refusing key " ~ key) }}
    {%- endif -%}
    {{ return(adapter.dispatch('ga4_param_value', 'cx_warehouse')(column, key)) }}
{% endmacro %}
{% macro duckdb__ga4_param_value(column, key) -%}
    list_filter({{ column }}, lambda x: x.key = '{{ key }}')[1].value
{%- endmacro %}
{% macro default__ga4_param_value(column, key) -%}
    jsonb_path_query_first({{ column }}, '$[*] ? (@.key == "{{ key }}").value')
{%- endmacro %}

{# A param's value as text from whichever value field holds it: `first` (the field GA4 uses for it), else
   string_value, int_value, double_value, float_value (an int param delivered as string_value '123' or double_value
   123.0 is not absent: it is typed - and quarantined when it does not parse - like the expected field). An empty
   field counts as absent (no trim(): it made the GA4 model's param reads ~40 % slower on 1M events). #}
{% macro ga4_param_any_field(value_expr, first) -%}
    {%- set fields = [first] + (['string_value', 'int_value', 'double_value', 'float_value'] | reject('equalto', first) | list) -%}
    coalesce({% for f in fields %}nullif(cast({{ struct_field(value_expr, f) }} as varchar), ''){% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
