{# Inner loop (kpi-definitions "Closed loop"), published: the alerts of the rule int_detractor_alerts (NPS
   detractor, CSAT 1-2, review 1-2 stars; due_at, is_loop_closed, masked comment - see there), with
   alert_id = md5(source || ':' || source_record_id) - stable across runs -, the preceding touchpoint
   (int_feedback_preceding_touchpoints) and channel: the channel of the feedback touchpoint (dim_channels code). #}
select
    cast({{ dbt.hash("a.source || ':' || a.source_record_id") }} as {{ dbt.type_string() }}) as alert_id,
    cast(a.alert_type as {{ dbt.type_string() }}) as alert_type,
    cast(a.person_sk as {{ dbt.type_string() }}) as person_sk,
    cast(a.source as {{ dbt.type_string() }}) as source,
    cast(a.source_record_id as {{ dbt.type_string() }}) as source_record_id,
    cast(a.score as numeric) as score,
    cast(a.comment as {{ dbt.type_string() }}) as comment,
    cast(a.created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(a.due_at as {{ dbt.type_timestamp() }}) as due_at,
    cast(p.preceding_touchpoint_type as {{ dbt.type_string() }}) as preceding_touchpoint_type,
    cast(p.preceding_touchpoint_at as {{ dbt.type_timestamp() }}) as preceding_touchpoint_at,
    a.is_loop_closed,
    cast(coalesce(tp.channel_sk, '-1') as {{ dbt.type_string() }}) as channel
from {{ ref('int_detractor_alerts') }} as a
left join {{ ref('int_feedback_preceding_touchpoints') }} as p
    on p.source = a.source and p.source_record_id = a.source_record_id
left join {{ ref('fct_touchpoints') }} as tp on tp.touchpoint_key = a.touchpoint_key
