{# the first load that brought the record's current version (its newest update time; staging's row of it is the
    LATEST load holding it, which a mere re-read of the same version would change - the mart must stay the same when a
    task runs twice); used by cx_identity_link_audit #}
{% macro first_load_of_current_version(base_model, key_col, updated_col) %}
    select cast({{ key_col }} as {{ dbt.type_string() }}) as source_id, min(_load_id) as _load_id,
           min(_extracted_at) as _extracted_at
    from (
        select {{ key_col }}, {{ updated_col }}, _load_id, _extracted_at,
               max({{ updated_col }}) over (partition by {{ key_col }}) as _current_at
        from {{ ref(base_model) }}
        where quarantine_reason is null
    ) as versions
    where {{ updated_col }} is not distinct from _current_at
    group by 1
{%- endmacro %}
