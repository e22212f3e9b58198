{# Spark SQL (dbt-spark, issue 21.3) implementations of the dispatched macros of cross_db.sql, marts_dialect.sql,
   ga4.sql and udfs.sql - one file so the Spark dialect is read in one place (docs/scale-out.md). Spark 4 runs with
   ANSI mode on: a bad cast fails the query, so every cast of vendor text goes through try_cast / try_to_timestamp
   behind the same regular expressions as PostgreSQL's helpers. String literals: Spark reads backslash escapes in
   them, so a regex's backslash is written doubled. Timestamps are Spark TIMESTAMP in the session time zone UTC
   (profiles.yml), which reads as the naive UTC timestamps of the other targets. #}

{# a regex replace of every match; `pattern` and `replacement` are plain text (quoted by the implementation) #}
{% macro regexp_replace_all(expr, pattern, replacement) %}{{ return(adapter.dispatch('regexp_replace_all', 'cx_warehouse')(expr, pattern, replacement)) }}{% endmacro %}
{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern | replace("'", "''") }}', '{{ replacement | replace("'", "''") }}', 'g')
{%- endmacro %}
{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ spark_string(pattern) }}, {{ spark_string(replacement) }})
{%- endmacro %}
{% macro spark_string(text) -%}
    '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro spark__type_double() %}double{% endmacro %}

{% macro spark__safe_cast_int(expr, type) -%}
    (case when trim(cast({{ expr }} as string)) rlike '^[+-]?[0-9]+(\\.0*)?$'
          then try_cast(regexp_replace(trim(cast({{ expr }} as string)), '\\.0*$', '') as {{ type }}) end)
{%- endmacro %}

{% macro spark__safe_cast_numeric(expr, type) -%}
    {%- set t = "trim(cast(" ~ expr ~ " as string))" -%}
    (case when {{ t }} rlike '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'
          then {% if type | lower in ('double', 'double precision', 'float', 'float8') -%}
            (case when abs(try_cast({{ t }} as double)) < double('infinity') then try_cast({{ t }} as double) end)
          {%- else -%}
            try_cast({{ t }} as {{ type }})
          {%- endif %} end)
{%- endmacro %}

{% macro spark__safe_cast_bool(expr) -%}
    (case lower(trim(cast({{ expr }} as string)))
        when 'true' then true when 't' then true when '1' then true when 'yes' then true when 'y' then true
        when 'false' then false when 'f' then false when '0' then false when 'no' then false when 'n' then false
     end)
{%- endmacro %}

{# ISO-8601 only (Spark's own cast also reads '2025', '2025-3' or '20250305'-like text the other targets refuse) #}
{% macro spark__try_ts_utc(expr) -%}
    (case when cast({{ expr }} as string) rlike '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)?\\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\\s*$'
          then try_cast(trim(cast({{ expr }} as string)) as timestamp) end)
{%- endmacro %}
{% macro spark__try_ts(expr) -%}
    (case when cast({{ expr }} as string) rlike '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)?\\s*$'
          then try_cast(trim(cast({{ expr }} as string)) as timestamp) end)
{%- endmacro %}

{# strptime codes -> a Spark datetime pattern; the fixed-width regex first (Spark's parser accepts shorter fields) #}
{% macro spark__safe_to_timestamp(expr, format) -%}
    {%- set codes = {'Y': ('yyyy', 4), 'm': ('MM', 2), 'd': ('dd', 2), 'H': ('HH', 2), 'M': ('mm', 2), 'S': ('ss', 2)} -%}
    {%- set ns = namespace(i=0, pattern='^', spark='') -%}
    {%- for _ in range(format | length) -%}
        {%- if ns.i < (format | length) -%}
            {%- if format[ns.i] == '%' -%}
                {%- set code = format[ns.i + 1] -%}
                {%- if code not in codes -%}
                    {{ exceptions.raise_compiler_error("safe_to_timestamp: unsupported format code %" ~ code) }}
                {%- endif -%}
                {%- set ns.pattern = ns.pattern ~ '[0-9]{' ~ codes[code][1] ~ '}' -%}
                {%- set ns.spark = ns.spark ~ codes[code][0] -%}
                {%- set ns.i = ns.i + 2 -%}
            {%- else -%}
                {%- if not modules.re.match('^[-/ :T.]$', format[ns.i]) -%}
                    {{ exceptions.raise_compiler_error("safe_to_timestamp: unsupported literal " ~ format[ns.i]) }}
                {%- endif -%}
                {%- set ns.pattern = ns.pattern ~ ('\\\\.' if format[ns.i] == '.' else format[ns.i]) -%}
                {%- set ns.spark = ns.spark ~ ("'T'" if format[ns.i] == 'T' else format[ns.i]) -%}
                {%- set ns.i = ns.i + 1 -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    (case when cast({{ expr }} as string) rlike '{{ ns.pattern }}$'
          then try_to_timestamp(cast({{ expr }} as string), '{{ ns.spark | replace("'", "\\'") }}') end)
{%- endmacro %}

{% macro spark__epoch_ms_to_ts(expr) -%}
    (case when {{ epoch_in_range(safe_cast_int(expr), 1000) }} then timestamp_millis({{ safe_cast_int(expr) }}) end)
{%- endmacro %}
{% macro spark__epoch_us_to_ts(int_expr) -%}
    (case when {{ epoch_in_range(int_expr, 1) }} then timestamp_micros({{ int_expr }}) end)
{%- endmacro %}

{% macro spark__seconds_between(start_ts, end_ts) -%}
    (cast(unix_micros({{ end_ts }}) - unix_micros({{ start_ts }}) as double) / 1e6)
{%- endmacro %}

{% macro spark__quantile(expr, p) -%}
    percentile({{ expr }}, {{ p }})
{%- endmacro %}

{% macro spark__sha256_hex(expr) -%}
    sha2(cast({{ expr }} as string), 256)
{%- endmacro %}

{% macro spark__json_text(expr, path) -%}
    get_json_object(cast({{ expr }} as string), '$.{{ path }}')
{%- endmacro %}

{% macro spark__struct_field(column, field) -%}
    {{ column }}.{{ field }}
{%- endmacro %}

{# 64-bit, like DuckDB's hash(): for collapsing exact duplicates in a PARTITION BY #}
{% macro spark__value_fingerprint(expr) -%}
    xxhash64({{ expr }})
{%- endmacro %}

{% macro spark__mask_pii_text(expr) -%}
    regexp_replace(
        regexp_replace(cast({{ expr }} as string),
                       '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', '[email]'),
        '\\+?[0-9][0-9 ().-]{6,}[0-9]', '[phone]')
{%- endmacro %}

{% macro spark__lexicon_normalize(expr) -%}
    trim(regexp_replace(lower(replace(cast({{ expr }} as string), '’', '\'')), '[^\\p{L}\\p{N}\']+', ' '))
{%- endmacro %}

{% macro spark__has_vietnamese_letters(expr) -%}
    (lower({{ expr }}) rlike '[ăđơưạảãẹẻẽịỉĩọỏụủũỳỵỷỹấầẩẫậắằẳẵặếềểễệốồổỗộớờởỡợứừửữự]')
{%- endmacro %}

{% macro spark__has_non_ascii_letters(expr) -%}
    (regexp_replace(lower({{ expr }}), '[^\\p{L}]+', '') rlike '[^a-z]')
{%- endmacro %}

{# GA4 event_params: an ARRAY<STRUCT<key, value STRUCT<...>>> read from the Parquet as landed (like DuckDB's LIST) #}
{% macro spark__ga4_param(column, key, value_field) -%}
    try_element_at(filter({{ column }}, x -> x.key = '{{ key }}'), 1).value.{{ value_field }}
{%- endmacro %}
{% macro spark__ga4_param_value(column, key) -%}
    try_element_at(filter({{ column }}, x -> x.key = '{{ key }}'), 1).value
{%- endmacro %}

{# no helper functions needed (try_cast and friends are built in) #}
{% macro spark__create_udfs() %}select 1 as no_udfs_needed{% endmacro %}

{# The materialization of the models that are incremental with delete+insert (upserts by key). dbt-spark upserts only
   into Delta / Iceberg / Hudi tables (merge), none of which a plain pyspark install has: on Spark these models are
   rebuilt in full each run (the same rows as an incremental run: each model is "equal to a full refresh" by test). #}
{% macro upsert_materialization() %}{{ return(adapter.dispatch('upsert_materialization', 'cx_warehouse')()) }}{% endmacro %}
{% macro default__upsert_materialization() %}{{ return('incremental') }}{% endmacro %}
{% macro spark__upsert_materialization() %}{{ return('table') }}{% endmacro %}

{# The project's portable SQL says `varchar` (DuckDB and PostgreSQL read it as unbounded text); Spark 4 refuses a
   VARCHAR without a length (and says `double` for `double precision`, which some of dbt's own type macros and the
   models' contracts use). Every statement dbt runs passes through dialect_sql (the override of dbt's global
   `statement` macro below), which on Spark reads a bare varchar as string and on the other targets changes nothing. #}
{% macro dialect_sql(sql) %}{{ return(adapter.dispatch('dialect_sql', 'cx_warehouse')(sql)) }}{% endmacro %}
{% macro default__dialect_sql(sql) %}{{ return(sql) }}{% endmacro %}
{% macro spark__dialect_sql(sql) -%}
    {%- set no_precision = modules.re.sub('(?i)\\bdouble\\s+precision\\b', 'double', sql) -%}
    {{ return(modules.re.sub('(?i)\\bvarchar\\b(?!\\s*\\()', 'string', no_precision)) }}
{%- endmacro %}

{# dbt's global statement macro (dbt/include/global_project/macros/etc/statement.sql, dbt-core 1.11), with the
   compiled code passed through dialect_sql: the root project's macro of the same name replaces the global one #}
{%- macro statement(name=None, fetch_result=False, auto_begin=True, language='sql') -%}
  {%- if execute: -%}
    {%- set compiled_code = caller() -%}
    {%- if language == 'sql' -%}{%- set compiled_code = dialect_sql(compiled_code) -%}{%- endif -%}

    {%- if name == 'main' -%}
      {{ log('Writing runtime {} for node "{}"'.format(language, model['unique_id'])) }}
      {{ write(compiled_code) }}
    {%- endif -%}
    {%- if language == 'sql'-%}
      {%- set res, table = adapter.execute(compiled_code, auto_begin=auto_begin, fetch=fetch_result) -%}
    {%- elif language == 'python' -%}
      {%- set res = submit_python_job(model, compiled_code) -%}
      {%- set table = None -%}
    {%- else -%}
      {% do exceptions.raise_compiler_error("statement macro didn't get supported language") %}
    {%- endif -%}

    {%- if name is not none -%}
      {{ store_result(name, response=res, agate_table=table) }}
    {%- endif -%}

  {%- endif -%}
{%- endmacro %}

{# Seeds on Spark: dbt-spark 1.11's spark__load_csv_rows formats its bindings into the SQL unquoted (a value with an
   apostrophe breaks the insert) and casts to the seed's column_types as written (`varchar`). The same inserts with
   each value as an escaped literal and the type through dialect_sql. #}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
      {%- set sql -%}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for col_name in agate_table.column_names -%}
                  {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                  {%- set v = row[loop.index0] -%}
                  cast({% if v is none %}null{% elif v is sameas true %}true{% elif v is sameas false %}false{% elif v is number %}{{ v }}{% else %}{{ spark_string(v | string) }}{% endif %} as {{ dialect_sql(type) }})
                  {%- if not loop.last %}, {% endif -%}
              {%- endfor -%})
              {%- if not loop.last %},{% endif %}
          {% endfor %}
      {%- endset -%}
      {%- call statement('_') -%}{{ sql }}{%- endcall -%}
      {%- if loop.index0 == 0 %}{% do statements.append(sql) %}{% endif -%}
  {%- endfor -%}
  {{ return(statements[0] if statements else '') }}
{% endmacro %}

{# position of `needle` in `haystack` (1-based, 0 when absent): PostgreSQL / DuckDB strpos, Spark instr #}
{% macro str_position(haystack, needle) %}{{ return(adapter.dispatch('str_position', 'cx_warehouse')(haystack, needle)) }}{% endmacro %}
{% macro default__str_position(haystack, needle) %}strpos({{ haystack }}, {{ needle }}){% endmacro %}
{% macro spark__str_position(haystack, needle) %}instr({{ haystack }}, {{ needle }}){% endmacro %}

{# one row per day from first_day to last_day (columns of `relation_alias`), as column `d`, joined after
   `from <bounds> as <relation_alias>` #}
{% macro join_day_series(relation_alias, first_day, last_day) %}{{ return(adapter.dispatch('join_day_series', 'cx_warehouse')(relation_alias, first_day, last_day)) }}{% endmacro %}
{% macro default__join_day_series(relation_alias, first_day, last_day) -%}
    cross join lateral generate_series(
        cast({{ relation_alias }}.{{ first_day }} as timestamp),
        cast({{ relation_alias }}.{{ last_day }} as timestamp),
        interval '1 day'
    ) as t(d)
{%- endmacro %}
{% macro spark__join_day_series(relation_alias, first_day, last_day) -%}
    {%- set a = "cast(" ~ relation_alias ~ "." ~ first_day ~ " as date)" -%}
    {%- set b = "cast(" ~ relation_alias ~ "." ~ last_day ~ " as date)" %}
    {#- no days when last_day < first_day (as generate_series): Spark's sequence would count down #}
    lateral view explode(case when {{ a }} <= {{ b }} then sequence({{ a }}, {{ b }}, interval 1 day) end) t as d
{%- endmacro %}

{# ISO day of week, 1 = Monday .. 7 = Sunday: DuckDB / PostgreSQL isodow, Spark dayofweek_iso #}
{% macro iso_day_of_week(expr) %}{{ return(adapter.dispatch('iso_day_of_week', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro default__iso_day_of_week(expr) %}extract(isodow from {{ expr }}){% endmacro %}
{% macro spark__iso_day_of_week(expr) %}extract(dayofweek_iso from {{ expr }}){% endmacro %}

{# dbt's contract check runs two queries through adapter.get_column_schema_from_query - past the `statement` macro, so
   past dialect_sql: the empty-schema query of the contract's column types and the model's own SQL as an empty
   subquery. Both are read through dialect_sql here too. #}
{% macro spark__get_empty_schema_sql(columns) %}{{ return(dialect_sql(dbt.default__get_empty_schema_sql(columns))) }}{% endmacro %}
{% macro spark__get_empty_subquery_sql(select_sql, select_sql_header=none) %}{{ return(dialect_sql(dbt.default__get_empty_subquery_sql(select_sql, select_sql_header))) }}{% endmacro %}

{# Model contracts' not_null constraints on Spark. dbt-spark 1.11's spark__persist_constraints reads a missing
   file_format as 'delta' and issues ALTER TABLE ... SET NOT NULL, which a Parquet table refuses. On Delta (an explicit
   file_format) that stays as it was; on any other format the constraint is checked instead, right after the table is
   written, and a null fails the model as the engine's NOT NULL would have (check constraints: Delta only, as before). #}
{% macro spark__persist_constraints(relation, model) %}
  {%- set contract_config = config.get('contract') -%}
  {%- if contract_config.enforced and config.get('file_format') == 'delta' -%}
    {% do alter_table_add_constraints(relation, model.constraints) %}
    {% do alter_column_set_constraints(relation, model.columns) %}
  {%- elif contract_config.enforced -%}
    {%- set not_null = [] -%}
    {%- for name, column in model.columns.items() -%}
      {%- for c in column.get('constraints', []) if c.type == 'not_null' -%}
        {%- do not_null.append(adapter.quote(name) if column.get('quote') else name) -%}
      {%- endfor -%}
    {%- endfor -%}
    {%- if not_null -%}
      {%- set counts = run_query('select ' ~ spark_null_counts(not_null) ~ ' from ' ~ relation) -%}
      {%- for name in not_null -%}
        {%- set n = counts.columns[loop.index0].values()[0] -%}
        {%- if n -%}
          {{ exceptions.raise_compiler_error("not_null constraint of " ~ relation ~ "." ~ name ~ " violated: "
                                             ~ n ~ " null value(s)") }}
        {%- endif -%}
      {%- endfor -%}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
{% macro spark_null_counts(columns) -%}
  {%- for c in columns %}count_if({{ c }} is null){{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}
