{# Review sites (seed review_sources); review_source_sk = review_source; '-1' is the unknown member. #}
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

select '-1', 'unknown', 'Unknown review source', 'unknown', null, false, null
