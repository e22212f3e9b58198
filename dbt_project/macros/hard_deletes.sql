{# Hard deletes at the source (docs/DECISIONLOG.md "Hard deletes"). Each macro returns a select of
   (<key_col>, deleted_detected_at): the keys deleted at the source and when the warehouse first saw it (the
   _extracted_at of the first load that proved the delete - deterministic, so a re-run gives the same value).
   The stg_* models keep every record and left join this set (is_deleted, deleted_detected_at). Plain SQL,
   valid on DuckDB and PostgreSQL. #}

{# The relation of a metadata source (Odoo <entity>__ids, HubSpot <object>_archived) if it exists and has the id
   column, else none: no snapshot landed yet, snapshots switched off, or only empty loads so far (the loader then
   creates the table with the load columns only). source() is called in every case so dbt records the dependency. #}
{% macro hard_delete_source(source_name, table_name, id_col='id') -%}
    {%- set rel = source(source_name, table_name) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {%- if found is none -%}{{ return(none) }}{%- endif -%}
    {%- set names = adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list -%}
    {%- if id_col | lower in names -%}{{ return(found) }}{%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{%- macro no_deleted_keys(base_model, key_col) -%}
    select {{ key_col }}, _extracted_at as deleted_detected_at from {{ ref(base_model) }} where 1 = 0
{%- endmacro %}

{# Id snapshots (`<entity>__ids`: every id the source holds at its _extracted_at): Odoo cursor entities
   (extractors/odoo/README.md) and the review sites' periodic full re-reads (extractors/common/reread.py).
   A key is deleted when it is missing from the NEWEST id snapshot and was last landed (any row of the key, good or
   quarantined) strictly before that snapshot; a key landed after the newest snapshot is never judged by it.
   Detected at = the first snapshot after the key's last landing that misses it. id_type: the key's type. #}
{% macro id_snapshot_deleted_keys(source_name, table_name, base_model, key_col, id_col='id', id_type='bigint') -%}
    {%- set ids = hard_delete_source(source_name, table_name, id_col) -%}
    {%- if ids is none -%}
    {{ no_deleted_keys(base_model, key_col) }}
    {%- else -%}
    select c.{{ key_col }}, min(c.snapshot_at) as deleted_detected_at
    from (
        select d.{{ key_col }}, s._load_id, s.snapshot_at
        from (
            select b.{{ key_col }}, b.last_landed_at
            from (
                select {{ key_col }}, max(_extracted_at) as last_landed_at
                from {{ ref(base_model) }}
                where {{ key_col }} is not null
                group by 1
            ) as b
            cross join (select max(_extracted_at) as newest_at from {{ ids }}) as n
            where b.last_landed_at < n.newest_at
                and not exists (
                    select 1 from {{ ids }} as i
                    where i._extracted_at = n.newest_at and cast(i.{{ id_col }} as {{ id_type }}) = b.{{ key_col }}
                )
        ) as d
        inner join (select distinct _load_id, _extracted_at as snapshot_at from {{ ids }}) as s
            on s.snapshot_at > d.last_landed_at
    ) as c
    left join {{ ids }} as i
        on i._load_id = c._load_id and cast(i.{{ id_col }} as {{ id_type }}) = c.{{ key_col }}
    where i._load_id is null
    group by 1
    {%- endif -%}
{%- endmacro %}

{% macro odoo_deleted_keys(entity, base_model, key_col, id_col='id') -%}
    {{ id_snapshot_deleted_keys('odoo', entity ~ '__ids', base_model, key_col, id_col, 'bigint') }}
{%- endmacro %}

{# Review sites (Trustpilot `id`, Google `reviewId`): the `reviews__ids` snapshot of a full re-read. #}
{% macro review_deleted_keys(source_name, base_model, key_col, id_col) -%}
    {{ id_snapshot_deleted_keys(source_name, 'reviews__ids', base_model, key_col, id_col, dbt.type_string()) }}
{%- endmacro %}

{# Odoo full-snapshot entities (cursor: null - every load is the whole table): a key missing from the newest load
   is gone. Detected at = the first load after the key's last landing. #}
{% macro odoo_full_snapshot_deleted_keys(base_model, key_col) -%}
    select k.{{ key_col }}, min(l.loaded_at) as deleted_detected_at
    from (
        select {{ key_col }}, max(_extracted_at) as last_landed_at
        from {{ ref(base_model) }}
        where {{ key_col }} is not null
        group by 1
    ) as k
    inner join (select distinct _extracted_at as loaded_at from {{ ref(base_model) }}) as l
        on l.loaded_at > k.last_landed_at
    group by 1
{%- endmacro %}

{# HubSpot objects: `<object>_archived` loads list every archived record at their _extracted_at
   (extractors/hubspot/README.md). A key is deleted when an archived load after its last normal landing lists it:
   the latest thing the source said about it is "archived". A restore brings the record back through search (a normal
   load after the archived one), which clears the flag. A record that later drops out of the archived list without
   coming back through search (HubSpot purges archived records after 90 days) stays deleted.
   Detected at = the first archived load after the last normal landing that lists the key. #}
{% macro hubspot_deleted_keys(object, base_model, key_col) -%}
    {%- set arch = hard_delete_source('hubspot', object ~ '_archived', 'id') -%}
    {%- if arch is none -%}
    {{ no_deleted_keys(base_model, key_col) }}
    {%- else -%}
    select a.{{ key_col }}, min(a._extracted_at) as deleted_detected_at
    from (
        select cast(id as {{ dbt.type_string() }}) as {{ key_col }}, _extracted_at
        from {{ arch }}
        where id is not null
    ) as a
    left join (
        select {{ key_col }}, max(_extracted_at) as last_landed_at
        from {{ ref(base_model) }}
        where {{ key_col }} is not null
        group by 1
    ) as b
        on b.{{ key_col }} = a.{{ key_col }}
    where b.last_landed_at is null or a._extracted_at > b.last_landed_at
    group by 1
    {%- endif -%}
{%- endmacro %}
