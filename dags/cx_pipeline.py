"""
### cx_pipeline — extract → load raw → validate raw → dbt build → analyze → validate → publish → export alerts

One run covers one data interval (one UTC day, `CronDataIntervalTimetable`, so every interval is non-empty; with
`CXW_SCHEDULE=hourly` one UTC hour: the same tasks read each source's delta of the hour, GA4's intraday export
table during the day, and the published generation records how fresh each source is, docs/operations.md).
Each source is extracted by its own task into immutable raw files (`extractors/<source>`, no warehouse access);
then, one writer at a time (pool `cxw_build_db`), each source's raw loads are copied into the build database as soon
as its extract is done (`load_<source>`: the GA4 export loads while the rate-limited HubSpot API is still read), Great
Expectations audits the new raw batches (`validate_raw`: volume vs previous loads, schema, ranges — read from the
Parquet files), dbt builds and tests staging → marts, the analyses after dbt add their tables to the marts
(`analyze`: key drivers, docs/analytics.md), GE audits the candidate marts (`validate`), and the audited
marts are published atomically to the read-only file BI opens. `export_alerts` hands new follow-up alerts of the
published generation to the inner loop (files + optional webhook, each alert once). A failed audit fails its task
with the suite, expectation, table and offending-row count; `publish` does not run and BI keeps the previous
generation. When nothing new arrived (same raw content, code and settings as the published build; cxw.buildstate)
`dbt_build` says so and `analyze` / `validate` / `publish` are skipped; `export_alerts` still runs and hands over any alert of
the published generation not yet handed over (a crash after publish or a webhook outage in an earlier run).
BI never goes back in time: a run whose data interval ends before the published generation's builds to the newer
end, and a build older than the published generation (two runs at once) is not published ("superseded").
Every task that opens the build database waits for its lock (`CXW_BUILD_DB_LOCK_WAIT_S`) rather than fail.
`summarize` always runs: it prints the summary (with the Data Docs path) and fails the run when nothing was
published for any other reason.

The logic lives in `cxw.tasks` (importable and tested without a scheduler); this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from cxw import SOURCES
from cxw.settings import schedule_cron, settings
from cxw.tasks import SKIPPED_WHEN_UNCHANGED  # analyze, validate, publish — not export_alerts (issue 15)
from cxw.warehouse_lock import pipeline_task  # every task holds it shared; ./cx erase exclusively (issue 15.6)

BUILD_DB_POOL = "cxw_build_db"  # one slot: DuckDB allows one writer, and a writer excludes readers

# The first data interval is the history start (CXW_HISTORY_START, the extractors' default when unset): a backfill
# (`airflow backfill create`) can reach back to the first day of a history from 2015 or earlier; with catchup off a
# scheduled deployment still starts at the latest interval.
START_DATE = pendulum.parse((settings().history_start or "2025-01-01")[:10], tz="UTC")

default_args = {
    "owner": "cx-warehouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=1),
}


@dag(
    dag_id="cx_pipeline",
    schedule=CronDataIntervalTimetable(schedule_cron(), timezone="UTC"),  # CXW_SCHEDULE: daily | hourly
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["cx", "warehouse", "extract", "dbt", "publish"],
    doc_md=__doc__,
)
def cx_pipeline():
    @task(execution_timeout=timedelta(minutes=45))
    def extract(source: str, data_interval_start=None, data_interval_end=None, dag_run=None, run_id=None) -> dict:
        from cxw import tasks

        # a backfill (`airflow backfill create`) reads exactly its interval and moves no cursor
        mode = tasks.extract_mode(getattr(dag_run, "run_type", None))
        # a missing / malformed setting or a vendor's 400/401/403/404 fails the task at once, without its retries
        # (AirflowFailException, tasks.fail_fast); the summary names the source, setting, endpoint and fix
        with pipeline_task(f"extract_{source}"):
            return tasks.extract(source, data_interval_start, data_interval_end, mode=mode, run_id=run_id)

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=30))
    def load_raw(source: str) -> dict:
        from cxw import tasks

        with pipeline_task(f"load_{source}"):
            return tasks.load_raw(source)

    # The raw gate reads the new loads' Parquet files, not the warehouse, but sits between two writers of the build
    # database and must not overlap a concurrent run's load: it takes the writer pool too.
    @task(pool=BUILD_DB_POOL, retries=0, execution_timeout=timedelta(minutes=20))
    def validate_raw(extract_reports, run_id=None) -> dict:
        from cxw.gate import validate_raw as run

        ids = [ld.get("load_id") for rep in (extract_reports or []) if rep for ld in rep.get("loads", [])]
        with pipeline_task("validate_raw"):
            return run(run_id, [i for i in ids if i])

    # When nothing BI reads can change (cxw.buildstate) the build is not run and its report says
    # {"skipped": True, "reason": ...}: the task succeeds and skips the audit and publish in one step
    # (as a short-circuit does; with trigger rules alone each would take a scheduler pass of its own); summarize
    # still runs and says why.
    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=60))
    def dbt_build(data_interval_end=None, run_id=None, ti=None) -> dict:
        from cxw import tasks

        with pipeline_task("dbt_build"):
            report = tasks.dbt_build(data_interval_end, run_id=run_id)
        if report.get("skipped") and ti is not None:
            from airflow.sdk.exceptions import DownstreamTasksSkipped

            ti.xcom_push(key="return_value", value=report)  # the exception below ends the task without a return
            raise DownstreamTasksSkipped(tasks=list(SKIPPED_WHEN_UNCHANGED))
        return report

    # (a cleared and re-run validate after a skipped build skips itself too)
    def skip_if_unchanged(dbt_report) -> None:
        if dbt_report and dbt_report.get("skipped"):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(dbt_report.get("reason") or "nothing new to build")

    # The analyses after dbt (cxw/analytics): write their tables into the build database (writer pool)
    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=30))
    def analyze(dbt_report, run_id=None, data_interval_end=None) -> dict:
        skip_if_unchanged(dbt_report)
        from cxw import tasks

        with pipeline_task("analyze"):  # CXW_ANALYZE_EVERY=day: once per as-of date (cxw/analytics/reuse.py)
            return tasks.analyze(data_interval_end, run_id)

    @task(pool=BUILD_DB_POOL, retries=0, execution_timeout=timedelta(minutes=30))
    def validate(dbt_report, analyses, run_id=None, data_interval_start=None, data_interval_end=None) -> dict:
        skip_if_unchanged(dbt_report)
        from cxw import tasks

        with pipeline_task("validate"):  # the marts gate; a failure also drops the analyses' record
            return tasks.validate(run_id, data_interval_start, data_interval_end)

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=30))
    def publish(validation, run_id=None, data_interval_start=None, data_interval_end=None) -> dict:
        from cxw import tasks

        with pipeline_task("publish"):
            return tasks.publish(run_id, data_interval_start, data_interval_end)

    # Reads only the published file (read-only, like BI): no writer pool. Retried: a webhook outage is transient.
    # none_failed: runs after a publish and after a publish skipped because nothing was new — alerts a crash or an
    # outage kept from being handed over are handed over then (each once: the export record,
    # alerts/exported_ids.json) — never after a failure.
    @task(retries=3, trigger_rule="none_failed", execution_timeout=timedelta(minutes=15))
    def export_alerts(publication) -> dict:
        from cxw.alerts import export_alerts as run

        with pipeline_task("export_alerts"):
            return run()

    # all_done: the summary (and the gate's reason and Data Docs path) is printed for failed runs too; the task
    # then fails without retry, so the run is marked failed.
    @task(pool=BUILD_DB_POOL, trigger_rule="all_done", execution_timeout=timedelta(minutes=10))
    def summarize(extract_reports, load_report, raw_validation, dbt_report, analyses, validation, publication,
                  alerts, run_id=None) -> dict:
        from cxw import tasks

        with pipeline_task("summarize"):
            summary = tasks.summarize(run_id, list(extract_reports or []), load_report, dbt_report, validation,
                                      publication, raw_validation=raw_validation, alerts=alerts,
                                      analyses=analyses)
        # superseded: a newer run published while this one built; BI keeps the newer data (the summary says so)
        if summary.get("status") not in ("published", "unchanged", "superseded"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"run did not publish: {summary.get('reason')}")
        return summary

    extracts = [extract.override(task_id=f"extract_{source}")(source=source) for source in SOURCES]
    loaded = []
    for source, extracted in zip(SOURCES, extracts):
        load = load_raw.override(task_id=f"load_{source}")(source=source)
        extracted >> load
        loaded.append(load)
    raw_checked = validate_raw(extracts)
    loaded >> raw_checked
    built = dbt_build()
    raw_checked >> built
    analyzed = analyze(built)
    validated = validate(built, analyzed)
    published = publish(validated)
    exported = export_alerts(published)
    summarize(extracts, loaded, raw_checked, built, analyzed, validated, published, exported)


cx_pipeline()
