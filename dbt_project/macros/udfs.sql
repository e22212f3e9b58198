{# Helper functions the PostgreSQL target needs for safe casts (PostgreSQL has no try_cast). Run by the
   on-run-start hook of dbt_project.yml before every dbt invocation; `create or replace` makes it idempotent.
   DuckDB needs none (try_cast / try_strptime are built in). Each function tests a cheap regular expression first,
   so the exception block (a subtransaction) is entered only for text that looks like a date. #}
{% macro create_udfs() %}{{ return(adapter.dispatch('create_udfs', 'cx_warehouse')()) }}{% endmacro %}

{% macro duckdb__create_udfs() %}select 1 as no_udfs_needed{% endmacro %}

{% macro default__create_udfs() %}
create schema if not exists _cxw;

-- ISO-8601 text -> naive UTC timestamp. With Z / an offset it is converted to UTC; naive text is UTC already
-- (never the session time zone). NULL when not ISO-8601 or not a real instant ('2025-02-30', '0000-00-00').
create or replace function _cxw.cx_try_ts_utc(v text) returns timestamp
language plpgsql immutable parallel unsafe as $fn$
begin
    if v is null or v !~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$' then
        return null;
    end if;
    begin
        if v ~ '(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)\s*$' and v ~ '[T ][0-9]{2}:' then
            return (cast(v as timestamptz) at time zone 'UTC');
        end if;
        return cast(v as timestamp);
    exception when others then
        return null;
    end;
end
$fn$;

-- naive ISO-8601 text (Odoo) -> timestamp; NULL when unparseable
create or replace function _cxw.cx_try_ts(v text) returns timestamp
language plpgsql immutable parallel unsafe as $fn$
begin
    if v is null or v !~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*$' then
        return null;
    end if;
    begin
        return cast(v as timestamp);
    exception when others then
        return null;
    end;
end
$fn$;

-- text in a fixed format (to_timestamp pattern + the regex it must match) -> timestamp; NULL when it does not
-- match or is not a real date (to_timestamp raises on '20250230')
create or replace function _cxw.cx_try_to_timestamp(v text, fmt text, pattern text) returns timestamp
language plpgsql stable parallel unsafe as $fn$
begin
    if v is null or v !~ pattern then
        return null;
    end if;
    begin
        -- to_timestamp reads the fields in the session time zone; the cast back gives the same wall-clock fields
        return cast(to_timestamp(v, fmt) as timestamp);
    exception when others then
        return null;
    end;
end
$fn$;

-- safe_cast_int (macros/cross_db.sql): an integer literal, at most a zero fraction ('4.0'); NULL for a
-- non-integral value ('4.5' is never rounded), an exponent, any other text or a value out of range.
-- No exception block: parallel safe and cheap (~1 us).
create or replace function _cxw.cx_try_bigint(v text) returns bigint
language plpgsql immutable strict parallel safe as $fn$
declare
    t text := btrim(v);
    n numeric;
begin
    if t ~ '^[+-]?[0-9]{1,18}$' then
        return cast(t as bigint);
    end if;
    if t !~ '^[+-]?[0-9]+(\.0*)?$' then
        return null;
    end if;
    n := cast(t as numeric);
    if abs(n) > 9223372036854775807 then
        return null;
    end if;
    return cast(n as bigint);
end
$fn$;

create or replace function _cxw.cx_try_int(v text) returns integer
language plpgsql immutable strict parallel safe as $fn$
declare
    n bigint := _cxw.cx_try_bigint(v);
begin
    if n is null or abs(n) > 2147483647 then
        return null;
    end if;
    return cast(n as integer);
end
$fn$;

-- text -> jsonb; NULL when it is not a JSON object or array
create or replace function _cxw.cx_try_jsonb(v text) returns jsonb
language plpgsql immutable parallel unsafe as $fn$
begin
    if v is null or v !~ '^\s*[\[{]' then
        return null;
    end if;
    begin
        return cast(v as jsonb);
    exception when others then
        return null;
    end;
end
$fn$;
{% endmacro %}
