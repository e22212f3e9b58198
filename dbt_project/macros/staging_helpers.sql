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

{# One row per load of an entity: extracted = staged + quarantined + duplicates. #}
{% macro ledger_rows(source_name, entity, base_model, stg_model) -%}
    select
        '{{ source_name }}' as source,
        '{{ entity }}' as entity,
        b._load_id as load_id,
        count(*) as extracted,
        count(s._record_seq) as staged,
        count(b.quarantine_reason) as quarantined,
        cast(sum(case when b.quarantine_reason is null and s._record_seq is null then 1 else 0 end) as bigint) as duplicates
    from {{ ref(base_model) }} as b
    left join {{ ref(stg_model) }} as s
        on s._load_id = b._load_id and s._record_seq = b._record_seq
    group by 1, 2, 3
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
