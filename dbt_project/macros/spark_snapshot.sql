{# Snapshots on Spark without Delta / Iceberg / Hudi (issue 21.3, docs/scale-out.md). dbt-spark's own snapshot
   materialization ends in MERGE INTO, which plain Parquet tables do not support, so it refuses any other file_format;
   the Delta / Iceberg jars are not installable here (they come from Maven only). This is dbt-spark 1.11's
   materialization (dbt/include/spark/macros/materializations/snapshot.sql) with one change: on a table format without
   MERGE the merge step is `spark_snapshot_rebuild` - the whole SCD2 table rebuilt from the previous table and dbt's
   own staging rows (inserts, updates, deletes of snapshot_staging_table: the same change detection as every other
   adapter), then written back with INSERT OVERWRITE. The rows are those MERGE would leave: each open version that
   the staging closes (update / delete) gets the staging's dbt_valid_to, each staged insert not in the table is added,
   every other row is kept as it was. Cost: the whole snapshot is rewritten each run (fine for customer records;
   with Delta / Iceberg, set file_format and the MERGE path below is taken). The root project's materialization of the
   same name and adapter replaces dbt-spark's. #}

{% macro spark_snapshot_rebuild(target, staging, target_columns, staging_columns) %}
  {%- set columns = config.get("snapshot_table_column_names") or get_snapshot_table_column_names() -%}
  {%- set rebuild = api.Relation.create(identifier=target.identifier ~ '__dbt_rebuild', schema=target.schema,
                                        database=none, type='table') -%}
  {%- set staged = staging_columns | map('lower') | list -%}
  {% call statement('drop_snapshot_rebuild') %}drop table if exists {{ rebuild }}{% endcall %}
  {% call statement('build_snapshot_rebuild') %}
    create table {{ rebuild }} using parquet as
    with closes as (
        {# one closing row per version: MERGE would refuse two source rows matching one target row #}
        select {{ columns.dbt_scd_id }} as scd_id, max({{ columns.dbt_valid_to }}) as valid_to
        from {{ staging }}
        where dbt_change_type in ('update', 'delete')
        group by 1
    )
    select
        {%- for c in target_columns %}
        {% if c.name | lower == columns.dbt_valid_to | lower -%}
        case when s.scd_id is not null
                  {%- if config.get("dbt_valid_to_current") %} and (d.{{ c.name }} = {{ config.get("dbt_valid_to_current") }} or d.{{ c.name }} is null)
                  {%- else %} and d.{{ c.name }} is null{% endif %}
             then s.valid_to else d.{{ c.name }} end as {{ c.name }}
        {%- else -%}
        d.{{ adapter.quote(c.name) }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ target }} as d
    left join closes as s on s.scd_id = d.{{ columns.dbt_scd_id }}
    union all
    select
        {%- for c in target_columns %}
        {% if c.name | lower in staged %}n.{{ adapter.quote(c.name) }}{% else %}cast(null as {{ c.data_type }}) as {{ adapter.quote(c.name) }}{% endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ staging }} as n
    where n.dbt_change_type = 'insert'
        and not exists (select 1 from {{ target }} as d where d.{{ columns.dbt_scd_id }} = n.{{ columns.dbt_scd_id }})
  {% endcall %}
  {{ return({'rebuild': rebuild, 'sql': 'insert overwrite table ' ~ target ~ ' select * from ' ~ rebuild}) }}
{% endmacro %}


{% materialization snapshot, adapter='spark' %}

  {%- set target_table = model.get('alias', model.get('name')) -%}

  {%- set strategy_name = config.get('strategy') -%}
  {%- set unique_key = config.get('unique_key') %}
  {%- set file_format = config.get('file_format') or 'parquet' -%}
  {%- set grant_config = config.get('grants') -%}
  {%- set has_merge = file_format in ['delta', 'iceberg', 'hudi'] -%}

  {% set target_relation_exists, target_relation = get_or_create_relation(
          database=none,
          schema=model.schema,
          identifier=target_table,
          type='table') -%}

  {%- if target_relation_exists and has_merge -%}
    {%- if not target_relation.is_delta and not target_relation.is_iceberg and not target_relation.is_hudi -%}
      {% set invalid_format_msg -%}
        The existing table {{ model.schema }}.{{ target_table }} is in another format than 'delta' or 'iceberg' or 'hudi'
      {%- endset %}
      {% do exceptions.raise_compiler_error(invalid_format_msg) %}
    {% endif %}
  {% endif %}

  {% if not adapter.check_schema_exists(model.database, model.schema) %}
    {% do create_schema(model.schema) %}
  {% endif %}

  {%- if not target_relation.is_table -%}
    {% do exceptions.relation_wrong_type(target_relation, 'table') %}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% set strategy_macro = strategy_dispatch(strategy_name) %}
  {% set strategy = strategy_macro(model, "snapshotted_data", "source_data", model['config'], target_relation_exists) %}

  {% if not target_relation_exists %}

      {% set build_sql = build_snapshot_table(strategy, model['compiled_code']) %}
      {% set final_sql = create_table_as(False, target_relation, build_sql) %}

  {% else %}

      {% set columns = config.get("snapshot_table_column_names") or get_snapshot_table_column_names() %}

      {{ adapter.valid_snapshot_target(target_relation, columns) }}

      {% set staging_table = spark_build_snapshot_staging_table(strategy, sql, target_relation) %}

      -- this may no-op if the database does not require column expansion
      {% do adapter.expand_target_column_types(from_relation=staging_table,
                                               to_relation=target_relation) %}

      {% set missing_columns = adapter.get_missing_columns(staging_table, target_relation)
                                   | rejectattr('name', 'equalto', 'dbt_change_type')
                                   | rejectattr('name', 'equalto', 'DBT_CHANGE_TYPE')
                                   | rejectattr('name', 'equalto', 'dbt_unique_key')
                                   | rejectattr('name', 'equalto', 'DBT_UNIQUE_KEY')
                                   | list %}

      {% do create_columns(target_relation, missing_columns) %}

      {% set source_columns = adapter.get_columns_in_relation(staging_table)
                                   | rejectattr('name', 'equalto', 'dbt_change_type')
                                   | rejectattr('name', 'equalto', 'DBT_CHANGE_TYPE')
                                   | rejectattr('name', 'equalto', 'dbt_unique_key')
                                   | rejectattr('name', 'equalto', 'DBT_UNIQUE_KEY')
                                   | list %}

      {% set quoted_source_columns = [] %}
      {% for column in source_columns %}
        {% do quoted_source_columns.append(adapter.quote(column.name)) %}
      {% endfor %}

      {% if has_merge %}
        {% set final_sql = snapshot_merge_sql(
              target = target_relation,
              source = staging_table,
              insert_cols = quoted_source_columns
           )
        %}
      {% else %}
        {% set rebuild = spark_snapshot_rebuild(target_relation, staging_table,
                                                adapter.get_columns_in_relation(target_relation),
                                                source_columns | map(attribute='name') | list) %}
        {% set final_sql = rebuild['sql'] %}
      {% endif %}

  {% endif %}

  {% call statement('main') %}
      {{ final_sql }}
  {% endcall %}

  {% if rebuild is defined %}
      {% do adapter.drop_relation(rebuild['rebuild']) %}
  {% endif %}

  {% set should_revoke = should_revoke(target_relation_exists, full_refresh_mode) %}
  {% do apply_grants(target_relation, grant_config, should_revoke) %}

  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {{ adapter.commit() }}

  {% if staging_table is defined %}
      {% do post_snapshot(staging_table) %}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
