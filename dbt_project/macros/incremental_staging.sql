{# Incremental staging (docs/DECISIONLOG.md "Incremental staging"). Plain SQL valid on DuckDB and PostgreSQL. #}

{# GA4: the order of a day's deliveries, newest last - every delivery of the daily table (events_YYYYMMDD) after
   every delivery of the intraday table (events_intraday_YYYYMMDD) ('1:' > '0:'), then by _load_id: the current delivery of an export
   day is max(key), its load id substr(max(key), 3). Loads landed before _export_table existed are daily loads. #}
{% macro ga4_delivery_key(relation) -%}
    {%- set ns = namespace(has=false) -%}
    {%- if execute -%}
        {%- for c in adapter.get_columns_in_relation(relation) -%}
            {%- if c.name | lower == '_export_table' -%}{%- set ns.has = true -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if ns.has -%}
    (case when substr(cast(_export_table as varchar), 1, 16) = 'events_intraday_' then '0:' else '1:' end
        || cast(_load_id as varchar))
    {%- else -%}
    ('1:' || cast(_load_id as varchar))
    {%- endif -%}
{%- endmacro %}

{# GA4: the export days whose current delivery (ga4_delivery_key: the daily table's latest load, else the intraday table's) is not the delivery stored in the
   staging table `built` (a new day, or a re-delivered day). Set-based, not a high-water mark: exact whatever order
   loads land in. Returns one column, _export_date, in the raw type. #}
{% macro ga4_changed_export_days(raw_relation, built) -%}
    select d._export_date
    from (
        select _export_date, substr(max({{ ga4_delivery_key(raw_relation) }}), 3) as current_load_id
        from {{ raw_relation }}
        group by _export_date
    ) as d
    left join (
        select export_date, min(_load_id) as min_load_id, max(_load_id) as max_load_id
        from {{ built }}
        group by export_date
    ) as b
        on b.export_date = cast(d._export_date as varchar)
    where b.export_date is null
        or b.min_load_id <> d.current_load_id
        or b.max_load_id <> d.current_load_id
{%- endmacro %}

{# GA4 post-hook: remove export days that are no longer in raw at all (delete+insert can only replace days that
   still have rows). A no-op while raw loads are append-only. #}
{% macro ga4_drop_vanished_export_days() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where export_date not in (
        select d from (
            select distinct cast(_export_date as varchar) as d
            from {{ source('ga4', 'events') }}
            where _export_date is not null
        ) as raw_days
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{# Latest-version staging (one row per key, newest = updated_col, then _load_id, then _record_seq, as in
   ranked_good_rows): the keys to recompute on an incremental run -
   - keys with a good base row that ranks above the stored version, or that are not stored at all;
   - keys whose stored row is no longer a good base row (its load left raw, or it is quarantined now).
   Set-based on the rows themselves, not a load high-water mark, so exact whatever order loads arrive in.
   updated_col must be non-null on good rows (it is part of the quarantine rule where used). #}
{% macro changed_version_keys(base_model, key_col, updated_col, built) -%}
    select b.{{ key_col }}
    from {{ ref(base_model) }} as b
    left join {{ built }} as t
        on t.{{ key_col }} = b.{{ key_col }}
    where b.quarantine_reason is null
        and (
            t.{{ key_col }} is null
            or b.{{ updated_col }} > t.{{ updated_col }}
            or (b.{{ updated_col }} = t.{{ updated_col }}
                and (b._load_id > t._load_id
                     or (b._load_id = t._load_id and b._record_seq > t._record_seq)))
        )
    union
    select t.{{ key_col }}
    from {{ built }} as t
    where not exists (
        select 1 from {{ ref(base_model) }} as b
        where b._load_id = t._load_id and b._record_seq = t._record_seq and b.quarantine_reason is null
    )
{%- endmacro %}

{# Post-hook of latest-version staging: stored rows whose raw row is no longer a good base row and that were not
   replaced by the run (their key has no good row left). A no-op while raw loads are append-only. #}
{% macro drop_rows_gone_from_base(base_model) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as t
    where not exists (
        select 1 from {{ ref(base_model) }} as b
        where b._load_id = t._load_id and b._record_seq = t._record_seq and b.quarantine_reason is null
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
