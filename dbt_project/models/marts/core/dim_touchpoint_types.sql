{# Touchpoint types with their journey stage (seed touchpoint_types: the mapping lives there);
   touchpoint_type_sk = touchpoint_type; '-1' is the unknown member. #}
select
    cast(t.touchpoint_type as {{ dbt.type_string() }}) as touchpoint_type_sk,
    cast(t.touchpoint_type as {{ dbt.type_string() }}) as touchpoint_type,
    cast(t.touchpoint_type_name as {{ dbt.type_string() }}) as touchpoint_type_name,
    cast(t.source as {{ dbt.type_string() }}) as source,
    cast(t.default_channel as {{ dbt.type_string() }}) as default_channel_sk,
    cast(t.journey_stage as {{ dbt.type_string() }}) as journey_stage,
    cast(t.journey_stage_order as integer) as journey_stage_order,
    t.is_feedback,
    cast(t.description as {{ dbt.type_string() }}) as description
from {{ ref('touchpoint_types') }} as t

union all

select '-1', 'unknown', 'Unknown touchpoint', 'unknown', '-1', 'unknown', 0, false, 'Unknown member'
