{# PII never leaves staging in plaintext: salted SHA-256 of the normalised value (NULL stays NULL). #}
{# trim + lower, plus the one full case folding lower() misses: German sharp s ('ß'.upper() is 'SS', so a
   CRM copy typed in capitals reads 'gross' where the ERP has 'groß'). #}
{% macro normalize_email(expr) -%}
    nullif(replace(lower(trim(cast({{ expr }} as varchar))), 'ß', 'ss'), '')
{%- endmacro %}

{% macro normalize_phone(expr) -%}
    nullif(
        case when trim(cast({{ expr }} as varchar)) like '+%' then '+' else '' end
        || {{ regexp_replace_all('cast(' ~ expr ~ ' as varchar)', '[^0-9]', '') }},
        '')
{%- endmacro %}

{% macro normalize_name(expr) -%}
    nullif(lower(trim({{ regexp_replace_all('cast(' ~ expr ~ ' as varchar)', '\s+', ' ') }})), '')
{%- endmacro %}

{# The salt is read at run time from the one-row table _cxw.pii_salt (never published), never inlined: compiled SQL,
   dbt's target/ and logs, view definitions and Data Docs hold only the table's name. The value equals the former
   var('pii_salt') hash: sha256(salt || '|' || value). DuckDB: cxw.dbt_pii_plugin writes the table when dbt opens
   the database; PostgreSQL: cxw_pii_salt_table() below, from the session setting cxw.pii_salt (PGOPTIONS, cxw.dbt). #}
{% macro hash_pii(expr) -%}
    case when ({{ expr }}) is not null
         then {{ sha256_hex("(select salt from _cxw.pii_salt) || '|' || (" ~ expr ~ ")") }} end
{%- endmacro %}

{% macro cxw_pii_salt_table() %}{{ return(adapter.dispatch('cxw_pii_salt_table', 'cx_warehouse')()) }}{% endmacro %}
{# DuckDB: the plugin has written the table already; any other adapter without its own way: nothing to do #}
{% macro default__cxw_pii_salt_table() -%}
select 1
{%- endmacro %}
{% macro postgres__cxw_pii_salt_table() -%}
create schema if not exists _cxw;
create table if not exists _cxw.pii_salt (salt text not null);
delete from _cxw.pii_salt;
insert into _cxw.pii_salt
select coalesce(nullif(current_setting('cxw.pii_salt', true), ''), 'demo-salt-not-secret');
{%- endmacro %}
{# Spark: from the session setting spark.cxw.pii_salt (profiles.yml, from CXW_PII_SALT), by Spark's ${...} variable
   substitution at parse time - the SQL dbt compiles and logs holds only the setting's name #}
{% macro spark__cxw_pii_salt_table() -%}
{%- if execute %}{% do run_query("create database if not exists _cxw") %}{% do run_query("drop table if exists _cxw.pii_salt") %}{% endif -%}
create table _cxw.pii_salt using parquet as
select case when '${spark.cxw.pii_salt}' like '%(redacted)%'
            then raise_error('CXW_PII_SALT matches spark.redaction.regex (secret, password, token, access key): Spark substitutes a redaction marker for it; choose a salt without those words')
            else coalesce(nullif('${spark.cxw.pii_salt}', ''), 'demo-salt-not-secret') end as salt
{%- endmacro %}
