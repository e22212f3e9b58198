{# The channel (dim_channels code) an order or a survey response came through: one mapping, read by the touchpoints
   (int_touchpoints_unioned), the segment inputs (int_customer_segments_monthly) and the KPI rows per channel
   (int_kpi_day_counts). An order's Odoo sales team named like 'website' is the online store, any other team the
   sales team; no team: null (the touchpoint type's default channel, online_store). A survey's HubSpot channel
   EMAIL / WEB / CHAT is email / web / phone_chat; other or none: null (the default channel, survey). #}
{% macro order_channel_sk(team_name) -%}
    case when {{ team_name }} is null then null
         when lower({{ team_name }}) like '%website%' then 'online_store'
         else 'sales_team' end
{%- endmacro %}

{% macro survey_channel_sk(survey_channel) -%}
    case upper({{ survey_channel }}) when 'EMAIL' then 'email' when 'WEB' then 'web' when 'CHAT' then 'phone_chat' end
{%- endmacro %}

{# The segment of a KPI fact as of its date (int_kpi_day_counts; docs/segments.md): join_segment_as_of joins the
   model's CTE `segments` (dim_customer_segments) on the person and valid_from <= date < valid_to; segment_as_of is
   the segment: 'unresolved' without a person, 'new' for a person without a month end before the date. #}
{% macro join_segment_as_of(person_col, date_col, alias='seg') -%}
    left join segments as {{ alias }}
        on {{ alias }}.person_sk = {{ person_col }}
        and {{ date_col }} >= {{ alias }}.valid_from
        and ({{ alias }}.valid_to is null or {{ date_col }} < {{ alias }}.valid_to)
{%- endmacro %}

{% macro segment_as_of(person_col, date_col, alias='seg') -%}
    case when coalesce({{ person_col }}, '-1') = '-1' then 'unresolved' else coalesce({{ alias }}.segment, 'new') end
{%- endmacro %}
