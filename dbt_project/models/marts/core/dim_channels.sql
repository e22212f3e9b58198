{# Channels of customer interaction (seed channels); channel_sk = channel_code; '-1' is the unknown member. #}
select
    cast(channel_code as {{ dbt.type_string() }}) as channel_sk,
    cast(channel_code as {{ dbt.type_string() }}) as channel_code,
    cast(channel_name as {{ dbt.type_string() }}) as channel_name,
    cast(channel_group as {{ dbt.type_string() }}) as channel_group,
    is_assisted
from {{ ref('channels') }}

union all

select '-1', 'unknown', 'Unknown channel', 'unknown', false
