{# PII never leaves staging in plaintext: salted SHA-256 of the normalised value (NULL stays NULL). #}
{# trim + lower, plus the one full case folding lower() misses: German sharp s ('ß'.upper() is 'SS', so a
   CRM copy typed in capitals reads 'gross' where the ERP has 'groß'). #}
{% macro normalize_email(expr) -%}
    nullif(replace(lower(trim(cast({{ expr }} as varchar))), 'ß', 'ss'), '')
{%- endmacro %}

{% macro normalize_phone(expr) -%}
    nullif(
        case when trim(cast({{ expr }} as varchar)) like '+%' then '+' else '' end
        || regexp_replace(cast({{ expr }} as varchar), '[^0-9]', '', 'g'),
        '')
{%- endmacro %}

{% macro normalize_name(expr) -%}
    nullif(lower(trim(regexp_replace(cast({{ expr }} as varchar), '\s+', ' ', 'g'))), '')
{%- endmacro %}

{% macro hash_pii(expr) -%}
    case when ({{ expr }}) is not null
         then {{ sha256_hex("'" ~ var('pii_salt') ~ "' || '|' || (" ~ expr ~ ")") }} end
{%- endmacro %}
