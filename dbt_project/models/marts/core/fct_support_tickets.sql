{# HubSpot tickets. First response = first agent reply - creation; resolution = closed - created (closed only). #}
with contact_of_ticket as (
    select from_id as ticket_id, min(to_id) as contact_id
    from {{ ref('stg_hubspot__associations') }}
    where from_type in ('tickets', 'ticket') and to_type in ('contacts', 'contact')
    group by 1
)

select
    t.ticket_id,
    coalesce(l.person_id, '-1') as person_sk,
    a.contact_id,
    t.category,
    t.priority,
    t.pipeline_stage,
    t.created_at,
    cast(t.created_at as date) as created_date,
    t.first_response_at,
    t.closed_at,
    cast(t.closed_at as date) as closed_date,
    t.closed_at is not null as is_closed,
    case when t.first_response_at is not null
         then {{ seconds_between('t.created_at', 't.first_response_at') }} / 3600.0 end as first_response_hours,
    case when t.closed_at is not null
         then {{ seconds_between('t.created_at', 't.closed_at') }} / 3600.0 end as resolution_hours
from {{ ref('stg_hubspot__tickets') }} as t
left join contact_of_ticket as a on a.ticket_id = t.ticket_id
left join {{ ref('int_identity_links') }} as l
    on l.source = 'hubspot' and l.source_id = a.contact_id
where not t.is_deleted  -- a ticket deleted (archived) in HubSpot leaves the fact; staging keeps it flagged
