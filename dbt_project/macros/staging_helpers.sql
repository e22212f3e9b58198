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
   GA4 day, a bad record re-read later), so the ledger is rebuilt in full; it is cheap: per-load counts of the base
   rows, of the staged rows (stg keeps at most one row per raw (_load_id, _record_seq)) and of the quarantine rows
   (one per distinct bad record, see quarantine_rows), joined per load, instead of a row-level join of raw with
   staging. duplicates = the rest: good rows not staged, bad rows that are a re-read copy or a superseded version. #}
{% macro ledger_rows(source_name, entity, base_model, stg_model) -%}
    select
        '{{ source_name }}' as source,
        '{{ entity }}' as entity,
        b._load_id as load_id,
        b.extracted,
        coalesce(s.staged, 0) as staged,
        coalesce(q.quarantined, 0) as quarantined,
        cast(b.extracted - coalesce(s.staged, 0) - coalesce(q.quarantined, 0) as bigint) as duplicates
    from (
        select _load_id, count(*) as extracted
        from {{ ref(base_model) }}
        group by _load_id
    ) as b
    left join (
        select _load_id, count(*) as staged
        from {{ ref(stg_model) }}
        group by _load_id
    ) as s
        on s._load_id = b._load_id
    left join (
        select load_id, count(*) as quarantined
        from {{ ref('quarantine') }}
        where source = '{{ source_name }}' and entity = '{{ entity }}'
        group by load_id
    ) as q
        on q.load_id = b._load_id
{%- endmacro %}

{# The quarantine holds each distinct bad record once (extractors re-read: a rolling Trustpilot window, full
   re-reads, HubSpot deltas, re-delivered GA4 days), as the latest delivery of that record:
   - keyed (key_col not null): the latest delivery of the key (by _load_id, _record_seq, good rows included). Re-read
     unchanged or changed, the newest delivery is the one row; a key whose newest delivery is good (fixed at the
     vendor) is staged and leaves the quarantine - its earlier bad deliveries are superseded versions;
   - keyless (no key_col, or the key itself is missing or ''): a content identity, md5 of the raw vendor fields (every raw
     column but the loader's _load_id / _extracted_at / _record_seq, null fields left out so a widened raw table
     changes nothing), or of identity_cols when given (fields a vendor never edits: an edited copy of a record
     without id is still the same record; those of them the raw table has, all fields when it has none). The newest delivery of each identity is the row;
   - current_filter: only rows of a base model's current delivery can be quarantined (GA4: a re-delivered day
     replaces the earlier delivery).
   Every other bad row counts as a duplicate in load_ledger (a re-read copy or a superseded version).
   content_hash = md5 of all vendor fields (shows whether two deliveries differ). Only bad rows are hashed. #}
{% macro quarantine_rows(source_name, entity, base_model, key_col=none, record_id=none, identity_cols=none,
                         current_filter=none) -%}
    {%- set raw = source(source_name, entity) -%}
    {%- set all_cols = [] -%}
    {%- set id_cols = [] -%}
    {%- if execute -%}
        {%- set wanted = (identity_cols or []) | map('lower') | list -%}
        {%- for c in adapter.get_columns_in_relation(raw) -%}
            {%- if c.name | lower not in ('_load_id', '_extracted_at', '_record_seq') -%}
                {%- do all_cols.append(c.name) -%}
                {%- if c.name | lower in wanted -%}{%- do id_cols.append(c.name) -%}{%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set rid = record_id or ('cast(b.' ~ key_col ~ ' as varchar)' if key_col else 'cast(null as varchar)') -%}
    select
        '{{ source_name }}' as source,
        '{{ entity }}' as entity,
        q.record_id,
        q.reason,
        q.load_id,
        q.record_seq,
        q.content_hash
    from (
        select
            bad.*,
            row_number() over (
                partition by case when bad._key is null then 'c:' || bad._identity else 'k:' || bad._key end
                order by bad.load_id desc, bad.record_seq desc
            ) as _delivery_rank
        from (
            select
                {{ rid }} as record_id,
                {% if key_col %}nullif(cast(b.{{ key_col }} as varchar), ''){% else %}cast(null as varchar){% endif %} as _key,
                b.quarantine_reason as reason,
                b._load_id as load_id,
                b._record_seq as record_seq,
                {{ fields_md5('r', all_cols) }} as content_hash,
                {{ fields_md5('r', id_cols or all_cols) }} as _identity
            from {{ ref(base_model) }} as b
            inner join {{ raw }} as r
                on r._load_id = b._load_id and r._record_seq = b._record_seq
            where b.quarantine_reason is not null
            {% if current_filter %}and b.{{ current_filter }}{% endif %}
        ) as bad
    ) as q
    where q._delivery_rank = 1
    {% if key_col %}
        and (q._key is null or not exists (
            select 1 from {{ ref(base_model) }} as g
            where cast(g.{{ key_col }} as varchar) = q._key
                {% if current_filter %}and g.{{ current_filter }}{% endif %}
                and (g._load_id > q.load_id or (g._load_id = q.load_id and g._record_seq > q.record_seq))
        ))
    {% endif %}
{%- endmacro %}

{# md5 of the non-null fields of alias `rel`, each as name=value (dialect-neutral: || and coalesce; no function
   with one argument per column, PostgreSQL allows at most 100). #}
{% macro fields_md5(rel, cols) -%}
    md5(''{% for c in cols %}
        || coalesce('{{ c | replace("'", "''") }}=' || cast({{ rel }}.{{ adapter.quote(c) }} as varchar) || chr(31), ''){% endfor %})
{%- endmacro %}

{# The fields of a raw row whose value did not parse as the type the extractor maps it to (Odoo: '327,80 EUR' in a
   float column lands NULL, named in `_type_error_fields`, the value as delivered in `_type_error_values`). The column
   exists only once a load had such a value: NULL before. Base models quarantine such a row with the reason
   'unparsable_value: <fields>' (source, entity and record id are the quarantine row's). #}
{% macro type_error_fields(source_name, table_name) -%}
    {%- set ns = namespace(has=false) -%}
    {%- if execute -%}
        {%- for c in adapter.get_columns_in_relation(source(source_name, table_name)) -%}
            {%- if c.name | lower == '_type_error_fields' -%}{%- set ns.has = true -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if ns.has -%}cast(_type_error_fields as varchar){%- else -%}cast(null as varchar){%- endif -%}
{%- endmacro %}

{# A typed value parses in full or its record is quarantined (issue 15): the names (comma-separated, NULL when none)
   of the fields whose value is present - not NULL, not blank - but does not parse as its type. An absent value keeps
   its documented default (archived false, active true, ...); a present one is never defaulted or guessed
   ('yes please' is not false, '4.5' is not 4). checks: [(field name, raw expression, parsed expression), ...];
   the base model quarantines with reason 'unparsable_value: <fields>'. #}
{% macro unparsable_fields(checks) -%}
    nullif(concat_ws(','{% for name, raw, parsed in checks %},
        case when {{ is_present(raw) }} and ({{ parsed }}) is null then '{{ name }}' end{% endfor %}), '')
{%- endmacro %}

{# The names (comma-separated, NULL when none) of the fields whose value is a number but outside the range its type
   holds: a money amount that does not fit decimal(18, 2) once rounded to cents (1e20), an epoch timestamp outside
   years 0001-9999. checks: [(field name, the value as a number - NULL when it is none, the value in its type - NULL
   when out of range), ...]; the base model quarantines with reason 'out_of_range: <fields>' (a value that is no
   number at all is 'unparsable_value'). Never silently NULL (DuckDB's try_cast) and never a failed build
   (PostgreSQL's cast): safe_cast_numeric / epoch_us_to_ts give NULL for such a value on both targets. #}
{% macro out_of_range_fields(checks) -%}
    nullif(concat_ws(','{% for name, number, typed in checks %},
        case when ({{ number }}) is not null and ({{ typed }}) is null then '{{ name }}' end{% endfor %}), '')
{%- endmacro %}

{# the out_of_range_fields checks of decimal columns: [(field, safe_cast_numeric(field), ... as type), ...] #}
{% macro decimal_range_checks(fields, type='decimal(18, 2)') -%}
    {%- set out = [] -%}
    {%- for f in fields -%}
        {%- do out.append((f, safe_cast_numeric(f), safe_cast_numeric(f, type))) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{# a raw value is present: not NULL and not blank #}
{% macro is_present(expr) -%}
    (nullif(trim(cast({{ expr }} as varchar)), '') is not null)
{%- endmacro %}
