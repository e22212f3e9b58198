{# Dialect-specific SQL of the intermediate / marts layers (owned with models/intermediate and models/marts).
   default__ = PostgreSQL-flavoured (POSIX regex), duckdb__ = DuckDB (RE2). Everything else in the marts uses
   dbt's cross-database macros (dbt.dateadd, dbt.datediff, dbt.date_trunc, dbt.hash, dbt.type_*). #}

{# ------------------------------------------------------------------ PII masking of free text
   E-mail addresses -> '[email]'; phone-like digit runs (optional +, a digit, >= 6 digits / spaces / ( ) . -,
   a digit: >= 8 characters) -> '[phone]'. Conservative: a long date such as 2025-03-01 is masked too. #}
{% macro mask_pii_text(expr) %}{{ return(adapter.dispatch('mask_pii_text', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro default__mask_pii_text(expr) -%}
    regexp_replace(
        regexp_replace(cast({{ expr }} as {{ dbt.type_string() }}),
                       '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[email]', 'g'),
        '\+?[0-9][0-9 ().-]{6,}[0-9]', '[phone]', 'g')
{%- endmacro %}

{# ------------------------------------------------------------------ text helpers for the sentiment lexicon
   lower-case, typographic apostrophe -> ', every run of characters that are not letters, digits or ' -> one space. #}
{% macro lexicon_normalize(expr) %}{{ return(adapter.dispatch('lexicon_normalize', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__lexicon_normalize(expr) -%}
    trim(regexp_replace(lower(replace(cast({{ expr }} as varchar), '’', '''')), '[^\pL\pN'']+', ' ', 'g'))
{%- endmacro %}
{% macro default__lexicon_normalize(expr) -%}
    trim(regexp_replace(lower(replace(cast({{ expr }} as text), '’', '''')), '[^[:alnum:]'']+', ' ', 'g'))
{%- endmacro %}

{# true when the text holds a letter only Vietnamese uses (ă đ ơ ư and the tone-marked vowels French lacks) #}
{% macro has_vietnamese_letters(expr) %}{{ return(adapter.dispatch('has_vietnamese_letters', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__has_vietnamese_letters(expr) -%}
    regexp_matches(lower({{ expr }}), '[ăđơưạảãẹẻẽịỉĩọỏụủũỳỵỷỹấầẩẫậắằẳẵặếềểễệốồổỗộớờởỡợứừửữự]')
{%- endmacro %}
{% macro default__has_vietnamese_letters(expr) -%}
    (lower({{ expr }}) ~ '[ăđơưạảãẹẻẽịỉĩọỏụủũỳỵỷỹấầẩẫậắằẳẵặếềểễệốồổỗộớờởỡợứừửữự]')
{%- endmacro %}

{# true when the text holds a letter outside a-z (accented Latin, other scripts; emoji are not letters) #}
{% macro has_non_ascii_letters(expr) %}{{ return(adapter.dispatch('has_non_ascii_letters', 'cx_warehouse')(expr)) }}{% endmacro %}
{% macro duckdb__has_non_ascii_letters(expr) -%}
    regexp_matches(regexp_replace(lower({{ expr }}), '[^\pL]+', '', 'g'), '[^a-z]')
{%- endmacro %}
{% macro default__has_non_ascii_letters(expr) -%}
    (regexp_replace(lower({{ expr }}), '[^[:alpha:]]+', '', 'g') ~ '[^a-z]')
{%- endmacro %}

{# occurrences of a (space-padded, double-spaced) phrase in a (space-padded, double-spaced) text #}
{% macro count_phrase(padded_text, padded_phrase) -%}
    ((length({{ padded_text }}) - length(replace({{ padded_text }}, {{ padded_phrase }}, ''))) / length({{ padded_phrase }}))
{%- endmacro %}

{# ------------------------------------------------------------------ lexicon sentiment
   texts_sql selects (text_id, text_body, language_hint). Method (docs/DECISIONLOG.md, "Sentiment"):
   1. language = language_hint (e.g. Trustpilot `language`, first two letters) when given, else detection:
      Vietnamese-only letters -> 'vi'; else the language with most marker words (seed language_markers, en / fr);
      else 'en' when every letter is a-z; else 'unknown'.
   2. text -> lower case, non-letters to spaces; every lexicon term (seed sentiment_lexicon, kind 'polar',
      VADER-style polarity -4..+4, single words and multi-word phrases) is counted as a whole word / phrase.
   3. an occurrence right after a negator (kind 'negator': not, never, don't, không, chưa ...) counts -0.74 x
      its polarity (VADER's negation scalar).
   4. sentiment_score = s / sqrt(s^2 + 15) in (-1, 1) (VADER's normalisation), 0 without hits;
      label negative < -0.05 <= neutral <= 0.05 < positive; languages outside var sentiment_languages: score
      null and label 'unknown'. #}
{% macro text_sentiment(texts_sql) -%}
with texts as (
    {{ texts_sql }}
),

prepared as (
    select
        text_id,
        nullif(lower(substr(cast(language_hint as {{ dbt.type_string() }}), 1, 2)), '') as language_hint,
        {{ has_vietnamese_letters('text_body') }} as has_vi_letters,
        {{ has_non_ascii_letters('text_body') }} as has_non_ascii,
        ' ' || replace({{ lexicon_normalize('text_body') }}, ' ', '  ') || ' ' as padded
    from texts
    where text_body is not null
),

markers as (
    select p.text_id, m.language, sum({{ count_phrase('p.padded', "' ' || replace(m.term, ' ', '  ') || ' '") }}) as hits
    from prepared as p
    inner join {{ ref('language_markers') }} as m
        on {{ str_position('p.padded', "' ' || replace(m.term, ' ', '  ') || ' '") }} > 0
    group by 1, 2
),

marker_best as (
    select text_id, language
    from (
        select text_id, language,
               row_number() over (partition by text_id order by hits desc, language) as rn
        from markers
    ) as r
    where rn = 1
),

languages as (
    select
        p.text_id,
        p.padded,
        coalesce(
            p.language_hint,
            case when p.has_vi_letters then 'vi' end,
            b.language,
            case when not p.has_non_ascii and length(trim(p.padded)) > 0 then 'en' end,
            'unknown') as language
    from prepared as p
    left join marker_best as b on b.text_id = p.text_id
),

polar_terms as (
    select language, term, cast(polarity as {{ type_double() }}) as polarity,
           ' ' || replace(term, ' ', '  ') || ' ' as padded_term
    from {{ ref('sentiment_lexicon') }}
    where kind = 'polar'
),

negators as (
    select language, term from {{ ref('sentiment_lexicon') }} where kind = 'negator'
),

hits as (
    select
        l.text_id,
        t.language,
        t.term,
        t.polarity,
        l.padded,
        {{ count_phrase('l.padded', 't.padded_term') }} as occurrences
    from languages as l
    inner join polar_terms as t
        on t.language = l.language
        and {{ str_position('l.padded', 't.padded_term') }} > 0
),

negated as (
    select
        h.text_id,
        h.term,
        sum({{ count_phrase('h.padded', "' ' || replace(n.term || ' ' || h.term, ' ', '  ') || ' '") }}) as negated_occurrences
    from hits as h
    inner join negators as n on n.language = h.language
    group by 1, 2
),

scored as (
    select
        h.text_id,
        count(*) as matched_terms,
        sum(h.polarity * (h.occurrences - coalesce(g.negated_occurrences, 0))
            + h.polarity * -0.74 * coalesce(g.negated_occurrences, 0)) as raw_score
    from hits as h
    left join negated as g on g.text_id = h.text_id and g.term = h.term
    group by 1
)

select
    l.text_id,
    l.language,
    l.language in ({{ "'" ~ var('sentiment_languages') | join("', '") ~ "'" }}) as is_language_covered,
    coalesce(s.matched_terms, 0) as matched_terms,
    case when l.language in ({{ "'" ~ var('sentiment_languages') | join("', '") ~ "'" }})
         then coalesce(s.raw_score, 0) end as raw_score,
    case when l.language in ({{ "'" ~ var('sentiment_languages') | join("', '") ~ "'" }})
         then coalesce(s.raw_score, 0) / sqrt(coalesce(s.raw_score, 0) * coalesce(s.raw_score, 0) + 15) end
        as sentiment_score,
    case
        when l.language not in ({{ "'" ~ var('sentiment_languages') | join("', '") ~ "'" }}) then 'unknown'
        when coalesce(s.raw_score, 0) / sqrt(coalesce(s.raw_score, 0) * coalesce(s.raw_score, 0) + 15) < -0.05 then 'negative'
        when coalesce(s.raw_score, 0) / sqrt(coalesce(s.raw_score, 0) * coalesce(s.raw_score, 0) + 15) > 0.05 then 'positive'
        else 'neutral'
    end as sentiment_label
from languages as l
left join scored as s on s.text_id = l.text_id
{%- endmacro %}
