{# The GA4 evidence of the identity graph, kept small: one row per export day and distinct (user_pseudo_id,
   user_id) pair of stg_ga4__events (user_id null for a browser never logged in), with the day's load. The identity
   models (int_identity_links, int_identity_conflicts) and the identity marts (cx_identity_link_audit,
   cx_identity_coverage) read these pairs instead of scanning every event each run: the same answer, since a
   distinct / min over the pairs of all days equals the distinct / min over all events.
   Incremental (delete+insert on export_date), as base_ga4__events_typed: every event of an export day comes from
   that day's current delivery (one _load_id per day), so the pairs of a day are a function of (day -> load). A run
   recomputes the days whose load in stg_ga4__events differs from the stored one or that are not stored (a new day,
   a re-delivered day), from all events of the day; a post-hook deletes days no longer in stg_ga4__events (a day
   whose events all moved to the quarantine, a raw load dropped). An erasure rebuilds with --full-refresh
   (cxw/erase_stores.py). Equal to a full refresh: tests/dbt/test_identity_incremental.py. #}
{{ config(
    materialized=upsert_materialization(),
    unique_key='export_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{% if is_incremental() %}delete from {{ this }} where export_date not in (select distinct export_date from {{ ref('stg_ga4__events') }}){% endif %}",
) }}

{% if is_incremental() %}
with changed_days as (
    select d.export_date
    from (
        select export_date, min(_load_id) as min_load_id, max(_load_id) as max_load_id
        from {{ ref('stg_ga4__events') }}
        group by export_date
    ) as d
    left join (
        select export_date, min(_load_id) as min_load_id, max(_load_id) as max_load_id
        from {{ this }}
        group by export_date
    ) as b on b.export_date = d.export_date
    where b.export_date is null
        or b.min_load_id <> d.min_load_id
        or b.max_load_id <> d.max_load_id
)

{% endif %}
select
    e.export_date,
    e.user_pseudo_id,
    e.user_id,
    min(e._load_id) as _load_id,
    min(e._extracted_at) as _extracted_at
from {{ ref('stg_ga4__events') }} as e
{% if is_incremental() %}
where e.export_date in (select export_date from changed_days)
{% endif %}
group by e.export_date, e.user_pseudo_id, e.user_id
