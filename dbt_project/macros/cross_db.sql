{# Dialect-specific SQL lives here, behind adapter.dispatch (default__ = Postgres-flavoured ANSI, duckdb__). #}

{# ISO-8601 text (with Z or an offset, or naive = UTC) -> naive UTC timestamp; NULL when unparseable. #}
{% macro try_ts_utc(expr) %}{{ return(adapter.dispatch('try_ts_utc', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__try_ts_utc(expr) -%}
    (try_cast(cast({{ expr }} as varchar) as timestamptz) at time zone 'UTC')
{%- endmacro %}
{% macro default__try_ts_utc(expr) -%}
    cx_try_timestamptz(cast({{ expr }} as text)) at time zone 'UTC'
{%- endmacro %}

{# Naive timestamp (Odoo stores naive UTC) from text or timestamp; NULL when unparseable. #}
{% macro try_ts(expr) %}{{ return(adapter.dispatch('try_ts', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__try_ts(expr) -%}
    try_cast({{ expr }} as timestamp)
{%- endmacro %}
{% macro default__try_ts(expr) -%}
    cast(cx_try_timestamptz(cast({{ expr }} as text)) as timestamp)
{%- endmacro %}

{# Text -> double; NULL when not a plain number (so 'five', '', '4.5/5' give NULL). #}
{% macro try_num(expr) %}{{ return(adapter.dispatch('try_num', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__try_num(expr) -%}
    try_cast(trim(cast({{ expr }} as varchar)) as double)
{%- endmacro %}
{% macro default__try_num(expr) -%}
    case when trim(cast({{ expr }} as text)) ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$'
         then cast(trim(cast({{ expr }} as text)) as double precision) end
{%- endmacro %}

{# epoch milliseconds / microseconds (number or numeric text) -> naive UTC timestamp #}
{% macro epoch_ms_to_ts(expr) %}{{ return(adapter.dispatch('epoch_ms_to_ts', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__epoch_ms_to_ts(expr) -%}
    make_timestamp(try_cast({{ expr }} as bigint) * 1000)
{%- endmacro %}
{% macro default__epoch_ms_to_ts(expr) -%}
    (to_timestamp(cast({{ expr }} as bigint) / 1000.0) at time zone 'UTC')
{%- endmacro %}
{% macro epoch_us_to_ts(expr) %}{{ return(adapter.dispatch('epoch_us_to_ts', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__epoch_us_to_ts(expr) -%}
    make_timestamp(try_cast({{ expr }} as bigint))
{%- endmacro %}
{% macro default__epoch_us_to_ts(expr) -%}
    (to_timestamp(cast({{ expr }} as bigint) / 1000000.0) at time zone 'UTC')
{%- endmacro %}

{# seconds between two timestamps, as double #}
{% macro seconds_between(start_ts, end_ts) %}{{ return(adapter.dispatch('seconds_between', 'cx_warehouse')(start_ts, end_ts)) }}{% endmacro %}
{% macro duckdb__seconds_between(start_ts, end_ts) -%}
    (epoch_us({{ end_ts }}) - epoch_us({{ start_ts }})) / 1e6
{%- endmacro %}
{% macro default__seconds_between(start_ts, end_ts) -%}
    extract(epoch from ({{ end_ts }} - {{ start_ts }}))
{%- endmacro %}

{# linear-interpolation quantile (aggregate) #}
{% macro quantile(expr, p) %}{{ return(adapter.dispatch('quantile', 'cx_warehouse')(expr, p)) }}{% endmacro %}
{% macro duckdb__quantile(expr, p) -%}
    quantile_cont({{ expr }}, {{ p }})
{%- endmacro %}
{% macro default__quantile(expr, p) -%}
    percentile_cont({{ p }}) within group (order by {{ expr }})
{%- endmacro %}

{# hex sha256 of text #}
{% macro sha256_hex(expr) %}{{ return(adapter.dispatch('sha256_hex', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__sha256_hex(expr) -%}
    sha256({{ expr }})
{%- endmacro %}
{% macro default__sha256_hex(expr) -%}
    encode(sha256(convert_to({{ expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{# a text field of a JSON document stored as text #}
{% macro json_text(expr, path) %}{{ return(adapter.dispatch('json_text', 'cx_warehouse')(expr, path)) }}{% endmacro %}
{% macro duckdb__json_text(expr, path) -%}
    json_extract_string(try_cast({{ expr }} as json), '$.{{ path }}')
{%- endmacro %}
{% macro default__json_text(expr, path) -%}
    (cast({{ expr }} as jsonb) #>> '{ {{- path | replace('.', ',') -}} }')
{%- endmacro %}

{# a cheap fingerprint of a (possibly nested) value, for collapsing exact duplicate rows #}
{% macro value_fingerprint(expr) %}{{ return(adapter.dispatch('value_fingerprint', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__value_fingerprint(expr) -%}
    hash({{ expr }})
{%- endmacro %}
{% macro default__value_fingerprint(expr) -%}
    md5(cast({{ expr }} as text))
{%- endmacro %}
