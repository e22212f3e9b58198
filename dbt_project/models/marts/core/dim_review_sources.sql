{# Review sites: the seed review_sources, plus each review-file site with reviews (extractors/review_files/mappings;
   none unless CXW_REVIEW_FILES_DIR delivers files, so the demo's rows stay the seed's);
   review_source_sk = review_source; '-1' is the unknown member. #}
select
    cast(review_source as {{ dbt.type_string() }}) as review_source_sk,
    cast(review_source as {{ dbt.type_string() }}) as review_source,
    cast(review_source_name as {{ dbt.type_string() }}) as review_source_name,
    cast(source as {{ dbt.type_string() }}) as source,
    cast(rating_scale as {{ dbt.type_string() }}) as rating_scale,
    has_reference_id,
    cast(identity_rule as {{ dbt.type_string() }}) as identity_rule
from {{ ref('review_sources') }}

union all

select
    site,
    site,
    site || ' (review file)',
    'review_files',
    {# decimal(10, 1) first: both engines print 1.0 (a double prints 1.0 in DuckDB, 1 in PostgreSQL) #}
    cast(cast(min(rating_min) as decimal(10, 1)) as {{ dbt.type_string() }}) || '-'
        || cast(cast(max(rating_max) as decimal(10, 1)) as {{ dbt.type_string() }}) || ' mapped to 1-5',
    false,
    'none (reviewer is not linkable)'
from {{ ref('stg_review_files__reviews') }}
where site not in (select review_source from {{ ref('review_sources') }})
group by site

union all

select '-1', 'unknown', 'Unknown review source', 'unknown', null, false, null
