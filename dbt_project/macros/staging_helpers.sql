{# Shared staging mechanics: the latest good version per natural key, the ledger rows of one entity. #}

{# Rows of base_model without quarantine_reason, ranked newest first per key; caller filters _version_rank = 1.
   Newest = latest updated_col, then latest _load_id, then latest _record_seq. #}
{% macro ranked_good_rows(base_model, key_col, updated_col=none) -%}
    select
        *,
        row_number() over (
            partition by {{ key_col }}
            order by
                {% if updated_col %}{{ updated_col }} desc nulls last,{% endif %}
                _load_id desc,
                _record_seq desc
        ) as _version_rank
    from {{ ref(base_model) }}
    where quarantine_reason is null
{%- endmacro %}

{# One row per load of an entity: extracted = staged + quarantined + duplicates.
   A load's row can change when later loads arrive (its rows become duplicates of newer versions, a re-delivered
   GA4 day), so the ledger is rebuilt in full; it is cheap: per-load counts of the base rows and of the staged
   rows (stg keeps at most one row per raw (_load_id, _record_seq)), joined per load, instead of a row-level join
   of raw with staging. Same result as counting matched rows: staged = stg rows of the load,
   duplicates = good rows not staged. #}
{% macro ledger_rows(source_name, entity, base_model, stg_model) -%}
    select
        '{{ source_name }}' as source,
        '{{ entity }}' as entity,
        b._load_id as load_id,
        b.extracted,
        coalesce(s.staged, 0) as staged,
        b.quarantined,
        cast(b.extracted - coalesce(s.staged, 0) - b.quarantined as bigint) as duplicates
    from (
        select _load_id, count(*) as extracted, count(quarantine_reason) as quarantined
        from {{ ref(base_model) }}
        group by _load_id
    ) as b
    left join (
        select _load_id, count(*) as staged
        from {{ ref(stg_model) }}
        group by _load_id
    ) as s
        on s._load_id = b._load_id
{%- endmacro %}

{% macro quarantine_rows(source_name, entity, base_model, id_col) -%}
    select
        '{{ source_name }}' as source,
        '{{ entity }}' as entity,
        cast({{ id_col }} as varchar) as record_id,
        quarantine_reason as reason,
        _load_id as load_id,
        _record_seq as record_seq
    from {{ ref(base_model) }}
    where quarantine_reason is not null
{%- endmacro %}
