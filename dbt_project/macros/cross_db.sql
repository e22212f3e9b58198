{# Dialect-specific SQL lives here, behind adapter.dispatch: `duckdb__` for DuckDB (the default target) and
   `default__` for PostgreSQL (ANSI-leaning; the fallback for any other adapter until it gets its own).
   Models never hold dialect syntax; they call these macros (architecture principle 6).

   PostgreSQL has no try_cast. Numbers and booleans are guarded inline with a regular expression (no function call,
   the planner sees plain SQL); values whose validity a regex cannot decide (calendar dates, times, JSON) go through
   small PL/pgSQL helpers in schema _cxw that catch the cast error, created idempotently by the on-run-start hook
   `create_udfs()` (macros/udfs.sql). See docs/DECISIONLOG.md "Postgres target". #}

{# ------------------------------------------------------------------------------------------------ types #}

{# 8-byte float. Not dbt.type_float(): on DuckDB that is `float`, which DuckDB reads as 4-byte REAL. #}
{% macro type_double() %}{{ return(adapter.dispatch('type_double', 'cx_warehouse')()) }}{% endmacro %}
{% macro duckdb__type_double() %}double{% endmacro %}
{% macro default__type_double() %}double precision{% endmacro %}

{# A sum of doubles that does not depend on the order the rows are added in: each value rounded to 9 decimals and
   summed as a decimal (exact), the result a double again. Parallel aggregation adds doubles in a varying order, so a
   plain sum() can differ in its last bits between two builds of the same data (seen in kpi_period's window rows):
   marts that must come out identical on a rebuild sum with this. #}
{% macro exact_sum(expr) -%}
    cast(sum(cast({{ expr }} as decimal(38, 9))) as {{ type_double() }})
{%- endmacro %}

{# -------------------------------------------------------------------------------------------- safe casts #}

{# Integer from anything (text or number); NULL when not an integer literal: an optional sign, digits, at most a
   zero fraction ('4', ' 7 ', '+3', '4.0' -> 4), surrounding blanks ignored; NULL for a non-integral value ('4.5', 4.5
   - never rounded or truncated), an exponent, '0x10', '1_000', a locale form ('1.234') or a value out of range.
   Identical on both targets (PostgreSQL: _cxw.cx_try_bigint, macros/udfs.sql). #}
{% macro safe_cast_int(expr, type='bigint') %}{{ return(adapter.dispatch('safe_cast_int', 'cx_warehouse')(expr, type)) }}{% endmacro %}
{% macro duckdb__safe_cast_int(expr, type) -%}
    {#- DuckDB's own try_cast rounds '4.5' to 5 and reads '0x10' and '1_000': only a plain integer literal is cast -#}
    (case when regexp_full_match(trim(cast({{ expr }} as varchar)), '[+-]?[0-9]+(\.0*)?')
          then try_cast(trim(cast({{ expr }} as varchar)) as {{ type }}) end)
{%- endmacro %}
{% macro default__safe_cast_int(expr, type) -%}
    {#- a PL/pgSQL helper (no exception block), so an expensive argument (a GA4 jsonpath) is evaluated once -#}
    {%- if type | lower in ('integer', 'int', 'int4') -%}_cxw.cx_try_int{%- else -%}_cxw.cx_try_bigint{%- endif -%}(cast({{ expr }} as text))
{%- endmacro %}

{# Number (double by default, or e.g. 'decimal(18, 2)') from text or number; NULL when not a plain number
   (so 'five', '', '4.5/5', 'N/A' give NULL) and, for a decimal type, when it does not fit the type once rounded to
   its scale (1e20 in decimal(18, 2): DuckDB's try_cast gives NULL, PostgreSQL's cast would fail the whole build with
   'numeric field overflow'; out_of_range_fields names such a value for the quarantine). PostgreSQL goes through the
   shortest round-trip text of a double, so a value exactly at a half cent can round differently from DuckDB (which
   rounds the binary double) when cast to decimal(18, 2); Odoo amounts are stored with 2 decimals, where both agree. #}
{% macro safe_cast_numeric(expr, type=none) %}{{ return(adapter.dispatch('safe_cast_numeric', 'cx_warehouse')(expr, type or type_double())) }}{% endmacro %}
{% macro duckdb__safe_cast_numeric(expr, type) -%}
    {%- if type | lower in ('double', 'double precision', 'float', 'float8', 'real') -%}
    {#- a double is finite or NULL: DuckDB reads '1e999' / 'inf' / 'nan' as +-inf / nan, PostgreSQL's cast fails -#}
    (case when isfinite(try_cast({{ expr }} as {{ type }})) then try_cast({{ expr }} as {{ type }}) end)
    {%- else -%}
    try_cast({{ expr }} as {{ type }})
    {%- endif -%}
{%- endmacro %}
{% macro default__safe_cast_numeric(expr, type) -%}
    {%- set t = "trim(cast(" ~ expr ~ " as text))" -%}
    {%- set dec = modules.re.match('^\s*(decimal|numeric)\s*\(\s*([0-9]+)\s*,\s*([0-9]+)\s*\)\s*$', type | lower) -%}
    (case when {{ t }} ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'
          then {% if dec -%}
            {#- nested CASE: the range test runs only on text the regex accepted (numeric takes any such exponent) -#}
            case when abs(round(cast({{ t }} as numeric), {{ dec.group(3) }}))
                      < cast('1e{{ dec.group(2) | int - dec.group(3) | int }}' as numeric)
                 then cast({{ t }} as {{ type }}) end
          {%- elif type | lower in ('double', 'double precision', 'float', 'float8') -%}
            {#- beyond a double's range: NULL ('1e999', like DuckDB's non-finite result); below its smallest normal
                value: 0 (DuckDB rounds '1e-999' to 0) - PostgreSQL's cast would fail the build on either -#}
            case when abs(cast({{ t }} as numeric)) > 1.7976931348623157e308 then null
                 when abs(cast({{ t }} as numeric)) < 2.2250738585072014e-308 then cast(0 as {{ type }})
                 else cast(cast({{ t }} as numeric) as {{ type }}) end
          {%- else -%}
            cast({{ t }} as {{ type }})
          {%- endif %} end)
{%- endmacro %}

{# vendor text (HubSpot property strings) -> double, surrounding blanks ignored #}
{% macro try_num(expr) %}{{ return(safe_cast_numeric("trim(cast(" ~ expr ~ " as varchar))")) }}{% endmacro %}

{# Boolean from a boolean or the usual literals (true/false, t/f, 1/0, yes/no, y/n); NULL otherwise. #}
{% macro safe_cast_bool(expr) %}{{ return(adapter.dispatch('safe_cast_bool', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__safe_cast_bool(expr) -%}
    try_cast({{ expr }} as boolean)
{%- endmacro %}
{% macro default__safe_cast_bool(expr) -%}
    (case lower(trim(cast({{ expr }} as text)))
        when 'true' then true when 't' then true when '1' then true when 'yes' then true when 'y' then true
        when 'false' then false when 'f' then false when '0' then false when 'no' then false when 'n' then false
     end)
{%- endmacro %}

{# ISO-8601 text (with Z or an offset, or naive = UTC) -> naive UTC timestamp; NULL when unparseable. #}
{% macro try_ts_utc(expr) %}{{ return(adapter.dispatch('try_ts_utc', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__try_ts_utc(expr) -%}
    (try_cast(cast({{ expr }} as varchar) as timestamptz) at time zone 'UTC')
{%- endmacro %}
{% macro default__try_ts_utc(expr) -%}
    _cxw.cx_try_ts_utc(cast({{ expr }} as text))
{%- endmacro %}

{# Naive timestamp (Odoo stores naive UTC) from text or timestamp; NULL when unparseable. #}
{% macro try_ts(expr) %}{{ return(adapter.dispatch('try_ts', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__try_ts(expr) -%}
    try_cast({{ expr }} as timestamp)
{%- endmacro %}
{% macro default__try_ts(expr) -%}
    _cxw.cx_try_ts(cast({{ expr }} as text))
{%- endmacro %}

{# Text in a strptime format made of %Y %m %d %H %M %S and literal characters (fixed width) -> timestamp; NULL when
   it does not match or is not a real calendar date / time ('20250230', '0000...').
   PostgreSQL: inline SQL (fields cut by position, ranges checked, the day checked against the month by date
   arithmetic) instead of to_timestamp, which raises on '20250230' and would need an exception block (a
   subtransaction per row, ~6 us, and no parallel plans). #}
{% macro safe_to_timestamp(expr, format) %}{{ return(adapter.dispatch('safe_to_timestamp', 'cx_warehouse')(expr, format)) }}{% endmacro %}
{% macro duckdb__safe_to_timestamp(expr, format) -%}
    try_strptime(cast({{ expr }} as varchar), '{{ format }}')
{%- endmacro %}
{% macro default__safe_to_timestamp(expr, format) -%}
    {%- set widths = {'Y': 4, 'm': 2, 'd': 2, 'H': 2, 'M': 2, 'S': 2} -%}
    {%- set ns = namespace(pos=1, i=0, pattern='^', fields={}) -%}
    {%- for _ in range(format | length) -%}
        {%- if ns.i < (format | length) -%}
            {%- if format[ns.i] == '%' -%}
                {%- set code = format[ns.i + 1] -%}
                {%- if code not in widths -%}
                    {{ exceptions.raise_compiler_error("safe_to_timestamp: unsupported format code %" ~ code) }}
                {%- endif -%}
                {%- do ns.fields.update({code: (ns.pos, widths[code])}) -%}
                {%- set ns.pattern = ns.pattern ~ '[0-9]{' ~ widths[code] ~ '}' -%}
                {%- set ns.pos = ns.pos + widths[code] -%}
                {%- set ns.i = ns.i + 2 -%}
            {%- else -%}
                {%- if not modules.re.match('^[-/ :T.]$', format[ns.i]) -%}
                    {{ exceptions.raise_compiler_error("safe_to_timestamp: unsupported literal " ~ format[ns.i]) }}
                {%- endif -%}
                {%- set ns.pattern = ns.pattern ~ ('\\.' if format[ns.i] == '.' else format[ns.i]) -%}
                {%- set ns.pos = ns.pos + 1 -%}
                {%- set ns.i = ns.i + 1 -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set t = "cast(" ~ expr ~ " as text)" -%}
    {%- set p = {'Y': '1970', 'm': '1', 'd': '1', 'H': '0', 'M': '0', 'S': '0'} -%}
    {%- for code, spec in ns.fields.items() -%}
        {%- do p.update({code: "cast(substr(" ~ t ~ ", " ~ spec[0] ~ ", " ~ spec[1] ~ ") as integer)"}) -%}
    {%- endfor -%}
    {%- set day_start = "(make_date(" ~ p['Y'] ~ ", " ~ p['m'] ~ ", 1) + (" ~ p['d'] ~ " - 1))" -%}
    {#- nested CASEs: each level only runs when the one before succeeded (AND has no guaranteed order) -#}
    (case when {{ t }} ~ '{{ ns.pattern }}$' then
        case when {{ p['Y'] }} >= 1 and {{ p['m'] }} between 1 and 12 and {{ p['d'] }} between 1 and 31
                  and {{ p['H'] }} <= 23 and {{ p['M'] }} <= 59 and {{ p['S'] }} <= 59 then
            case when extract(day from {{ day_start }}) = {{ p['d'] }}
                 then cast({{ day_start }} as timestamp)
                      + make_interval(hours => {{ p['H'] }}, mins => {{ p['M'] }}, secs => {{ p['S'] }})
            end
        end
     end)
{%- endmacro %}
{% macro safe_to_date(expr, format) -%}
    cast({{ safe_to_timestamp(expr, format) }} as date)
{%- endmacro %}

{# ------------------------------------------------------------------------------------------------- epochs #}

{# epoch milliseconds / microseconds (number or numeric text) -> naive UTC timestamp; NULL when not an integer
   (safe_cast_int: '1741000000000.5' is NULL, never rounded) or outside years 0001-9999 (epoch_in_range: a huge
   value would fail the build - DuckDB 'Timestamp microseconds out of range', PostgreSQL 'timestamp out of range' -
   and a year past 9999 is no instant a reader's datetime can hold) #}
{% macro epoch_ms_to_ts(expr) %}{{ return(adapter.dispatch('epoch_ms_to_ts', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__epoch_ms_to_ts(expr) -%}
    (case when {{ epoch_in_range(safe_cast_int(expr), 1000) }} then make_timestamp({{ safe_cast_int(expr) }} * 1000) end)
{%- endmacro %}
{% macro default__epoch_ms_to_ts(expr) -%}
    (case when {{ epoch_in_range(safe_cast_int(expr), 1000) }}
          then timestamp '1970-01-01 00:00:00' + {{ safe_cast_int(expr) }} * interval '1 millisecond' end)
{%- endmacro %}
{# is_int: expr is a bigint already (safe_cast_int done by the caller, once) #}
{% macro epoch_us_to_ts(expr, is_int=false) %}{{ return(adapter.dispatch('epoch_us_to_ts', 'cx_warehouse')(expr if is_int else safe_cast_int(expr))) }}{% endmacro %}
{% macro duckdb__epoch_us_to_ts(int_expr) -%}
    (case when {{ epoch_in_range(int_expr, 1) }} then make_timestamp({{ int_expr }}) end)
{%- endmacro %}
{% macro default__epoch_us_to_ts(int_expr) -%}
    {#- interval * number multiplies in double precision: exact only below 2^53 us (year 2255), so whole seconds
        and the microseconds are added apart (q * 1e6 + r = n also for a negative n) -#}
    (case when {{ epoch_in_range(int_expr, 1) }}
          then timestamp '1970-01-01 00:00:00' + ({{ int_expr }} / 1000000) * interval '1 second'
               + ({{ int_expr }} % 1000000) * interval '1 microsecond' end)
{%- endmacro %}
{# an epoch count (a bigint of units of `us_per_unit` microseconds: 1 for microseconds, 1000 for milliseconds) lies in
   0001-01-01 .. 9999-12-31 23:59:59.999999 UTC; compared before any multiplication, so it cannot overflow #}
{% macro epoch_in_range(int_expr, us_per_unit) -%}
    ({{ int_expr }} between {{ -62135596800000000 // us_per_unit }} and {{ 253402300799999999 // us_per_unit }})
{%- endmacro %}

{# seconds between two timestamps, as double (exact to the microsecond on both targets) #}
{% macro seconds_between(start_ts, end_ts) %}{{ return(adapter.dispatch('seconds_between', 'cx_warehouse')(start_ts, end_ts)) }}{% endmacro %}
{% macro duckdb__seconds_between(start_ts, end_ts) -%}
    (epoch_us({{ end_ts }}) - epoch_us({{ start_ts }})) / 1e6
{%- endmacro %}
{% macro default__seconds_between(start_ts, end_ts) -%}
    cast(extract(epoch from ({{ end_ts }} - {{ start_ts }})) as {{ type_double() }})
{%- endmacro %}

{# ------------------------------------------------------------------------------------------- aggregates #}

{# linear-interpolation quantile (aggregate) #}
{% macro quantile(expr, p) %}{{ return(adapter.dispatch('quantile', 'cx_warehouse')(expr, p)) }}{% endmacro %}
{% macro duckdb__quantile(expr, p) -%}
    quantile_cont({{ expr }}, {{ p }})
{%- endmacro %}
{% macro default__quantile(expr, p) -%}
    percentile_cont({{ p }}) within group (order by {{ expr }})
{%- endmacro %}

{# ------------------------------------------------------------------------------------------- text, json #}

{# hex sha256 of text (lower-case hex, identical on both targets) #}
{% macro sha256_hex(expr) %}{{ return(adapter.dispatch('sha256_hex', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__sha256_hex(expr) -%}
    sha256({{ expr }})
{%- endmacro %}
{% macro default__sha256_hex(expr) -%}
    encode(sha256(convert_to({{ expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{# a text field of a JSON document stored as text; NULL when the text is not JSON (Odoo translatable names are
   JSON like {"en_US": "Sales"} in Odoo 17, plain text elsewhere) #}
{% macro json_text(expr, path) %}{{ return(adapter.dispatch('json_text', 'cx_warehouse')(expr, path)) }}{% endmacro %}
{% macro duckdb__json_text(expr, path) -%}
    json_extract_string(try_cast({{ expr }} as json), '$.{{ path }}')
{%- endmacro %}
{% macro default__json_text(expr, path) -%}
    (_cxw.cx_try_jsonb(cast({{ expr }} as text)) #>> '{ {{- path | replace('.', ',') -}} }')
{%- endmacro %}

{# a field of a struct column (DuckDB STRUCT; on PostgreSQL the loader stores structs as jsonb) #}
{% macro struct_field(column, field) %}{{ return(adapter.dispatch('struct_field', 'cx_warehouse')(column, field)) }}{% endmacro %}
{% macro duckdb__struct_field(column, field) -%}
    {{ column }}.{{ field }}
{%- endmacro %}
{% macro default__struct_field(column, field) -%}
    ({{ column }} ->> '{{ field }}')
{%- endmacro %}

{# a fingerprint of a (possibly nested) value, for collapsing exact duplicate rows (used in PARTITION BY).
   DuckDB: 64-bit hash() of the value. PostgreSQL: the jsonb value itself - jsonb is canonical (key order,
   whitespace) and comparable, so this is exact and, measured on 1M GA4 rows, faster than md5 of its text
   (5.5 s vs 7.9 s for the window). #}
{% macro value_fingerprint(expr) %}{{ return(adapter.dispatch('value_fingerprint', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__value_fingerprint(expr) -%}
    hash({{ expr }})
{%- endmacro %}
{% macro default__value_fingerprint(expr) -%}
    {{ expr }}
{%- endmacro %}
