{# Outer loop: recurring issues ranked by frequency and by the NPS they cost. Issues: support ticket categories
   (every ticket), review topics and survey-comment topics (int_feedback_topics: complaint-context text only).
   Per issue: occurrences, persons hit; share and cumulative share of its issue_type (Pareto, most frequent first);
   and the response-level NPS of resolved persons who hit the issue vs resolved persons who did not (all NPS
   responses in the KPI window). nps_gap = nps_hit - nps_not_hit; rank_by_nps_cost 1 = most negative gap.
   Issue occurrences and NPS responses are restricted to the KPI window. #}
with issues as (
    select 'ticket_category' as issue_type, coalesce(category, 'UNCATEGORISED') as issue,
           person_sk, created_at as occurred_at
    from {{ ref('fct_support_tickets') }}
    where {{ in_kpi_window('created_date') }}
    union all
    select case when feedback_kind = 'review' then 'review_topic' else 'survey_topic' end,
           topic, person_sk, occurred_at
    from {{ ref('int_feedback_topics') }}
    where {{ in_kpi_window('occurred_date') }}
),

nps as (
    select person_sk, is_promoter, is_detractor
    from {{ ref('fct_survey_responses') }}
    where survey_type = 'NPS' and person_sk <> '-1'
        and {{ in_kpi_window('submitted_date') }}
),

hit_persons as (
    select distinct issue_type, issue, person_sk
    from issues
    where person_sk <> '-1'
),

frequency as (
    select
        issue_type,
        issue,
        count(*) as occurrences,
        count(distinct case when person_sk <> '-1' then person_sk end) as persons_hit
    from issues
    group by 1, 2
),

nps_split as (
    select
        f.issue_type,
        f.issue,
        sum(case when h.person_sk is not null and n.is_promoter then 1 else 0 end)
            - sum(case when h.person_sk is not null and n.is_detractor then 1 else 0 end) as nps_hit_numerator,
        sum(case when h.person_sk is not null then 1 else 0 end) as nps_hit_responses,
        sum(case when h.person_sk is null and n.is_promoter then 1 else 0 end)
            - sum(case when h.person_sk is null and n.is_detractor then 1 else 0 end) as nps_not_hit_numerator,
        sum(case when h.person_sk is null then 1 else 0 end) as nps_not_hit_responses
    from frequency as f
    cross join nps as n
    left join hit_persons as h
        on h.issue_type = f.issue_type and h.issue = f.issue and h.person_sk = n.person_sk
    group by 1, 2
),

measured as (
    select
        f.issue_type,
        f.issue,
        f.occurrences,
        f.persons_hit,
        cast(f.occurrences as {{ type_double() }}) / sum(f.occurrences) over (partition by f.issue_type) as share_of_type,
        cast(sum(f.occurrences) over (
            partition by f.issue_type order by f.occurrences desc, f.issue asc
            rows between unbounded preceding and current row) as {{ type_double() }})
            / sum(f.occurrences) over (partition by f.issue_type) as cumulative_share,
        row_number() over (partition by f.issue_type order by f.occurrences desc, f.issue asc) as rank_by_frequency,
        coalesce(s.nps_hit_numerator, 0) as nps_hit_numerator,
        coalesce(s.nps_hit_responses, 0) as nps_hit_responses,
        {{ kpi_scaled('nps', 's.nps_hit_numerator', 's.nps_hit_responses') }} as nps_hit,
        coalesce(s.nps_not_hit_numerator, 0) as nps_not_hit_numerator,
        coalesce(s.nps_not_hit_responses, 0) as nps_not_hit_responses,
        {{ kpi_scaled('nps', 's.nps_not_hit_numerator', 's.nps_not_hit_responses') }} as nps_not_hit
    from frequency as f
    left join nps_split as s on s.issue_type = f.issue_type and s.issue = f.issue
)

select
    m.*,
    m.nps_hit - m.nps_not_hit as nps_gap,
    row_number() over (
        partition by m.issue_type
        order by case when m.nps_hit is null or m.nps_not_hit is null then 1 else 0 end,
                 m.nps_hit - m.nps_not_hit, m.issue) as rank_by_nps_cost,
    m.cumulative_share - m.share_of_type < 0.8 as is_pareto_core,
    m.nps_hit_responses < {{ var('low_sample_min') }} as is_low_sample
from measured as m
