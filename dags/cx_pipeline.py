"""
### cx_pipeline — extract → land raw → dbt build → validate → publish

One run covers one data interval (one UTC day, `CronDataIntervalTimetable`, so every interval is non-empty).
Each source is extracted by its own task into immutable raw files (`extractors/<source>`, no warehouse access);
then, one writer at a time (pool `cxw_build_db`), the raw loads are copied into the build database, dbt builds
and tests staging → marts, Great Expectations audits the candidate marts, and the audited marts are published
atomically to the read-only file BI opens. A failed audit fails `validate`; `publish` does not run and BI keeps
the previous generation. The last task prints the run summary.

The logic lives in `cxw.tasks` (importable and tested without a scheduler); this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from cxw import SOURCES

BUILD_DB_POOL = "cxw_build_db"  # one slot: DuckDB allows one writer, and a writer excludes readers

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
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["cx", "warehouse", "extract", "dbt", "publish"],
    doc_md=__doc__,
)
def cx_pipeline():
    @task(execution_timeout=timedelta(minutes=45))
    def extract(source: str, data_interval_start=None, data_interval_end=None, dag_run=None) -> dict:
        from cxw import tasks

        mode = "window" if dag_run is not None and str(getattr(dag_run, "run_type", "")).endswith("backfill") \
            else "incremental"
        return tasks.extract(source, data_interval_start, data_interval_end, mode=mode)

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=30))
    def load_raw() -> dict:
        from cxw import tasks

        return tasks.load_raw()

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=60))
    def dbt_build(data_interval_end=None) -> dict:
        from cxw import tasks

        return tasks.dbt_build(data_interval_end)

    @task(pool=BUILD_DB_POOL, retries=0, execution_timeout=timedelta(minutes=30))
    def validate(run_id=None) -> dict:
        from cxw import tasks

        return tasks.validate(run_id)

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=30))
    def publish(run_id=None, data_interval_start=None, data_interval_end=None) -> dict:
        from cxw import tasks

        return tasks.publish(run_id, data_interval_start, data_interval_end)

    @task(pool=BUILD_DB_POOL, execution_timeout=timedelta(minutes=10))
    def summarize(extract_reports, load_report, dbt_report, validation, publication, run_id=None) -> dict:
        from cxw import tasks

        return tasks.summarize(run_id, list(extract_reports), load_report, dbt_report, validation, publication)

    extracts = [extract.override(task_id=f"extract_{source}")(source=source) for source in SOURCES]
    loaded = load_raw()
    extracts >> loaded
    built = dbt_build()
    loaded >> built
    validated = validate()
    built >> validated
    published = publish()
    validated >> published
    summarize(extracts, loaded, built, validated, published)


cx_pipeline()
