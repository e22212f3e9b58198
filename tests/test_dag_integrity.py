"""Every DAG file imports cleanly and follows the house rules: retries, timeouts, tags, the writer pool,
a data-interval timetable with non-empty intervals, dag_id = file stem, and no heavy work at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
BUILD_DB_TASKS = {"validate_raw", "dbt_build", "analyze", "validate", "publish", "summarize"}  # and every load_<source>
# Audits are deterministic: retrying a failed gate only delays the alert (and could not change the verdict).
GATE_TASKS = {"validate_raw", "validate"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    # set for this module only: a leaked AIRFLOW_HOME would point the later tests of this process (another order,
    # an xdist worker) at this module's home
    with pytest.MonkeyPatch.context() as mp:
        if "AIRFLOW_HOME" not in os.environ:
            mp.setenv("AIRFLOW_HOME", str(home))
        if "AIRFLOW__CORE__LOAD_EXAMPLES" not in os.environ:
            mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(REPO / "dags"))


def test_there_are_dag_files():
    assert DAG_FILES, "no DAG files in dags/"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors
    assert {Path(d.fileloc).stem for d in dagbag.dags.values()} == {f.stem for f in DAG_FILES}


def test_dag_id_is_the_file_stem_and_documented(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag_id == Path(dag.fileloc).stem
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        assert dag.tags, f"{dag_id} has no tags"


def test_every_task_has_retries_and_a_timeout(dagbag):
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.execution_timeout is not None, f"{dag.dag_id}.{t.task_id} has no execution_timeout"
            if t.task_id in GATE_TASKS:
                assert t.retries == 0, f"{t.task_id} is a gate: a failed audit must fail at once, not retry"
            else:
                assert t.retries >= 1, f"{dag.dag_id}.{t.task_id} has no retries"


def test_tasks_that_open_the_build_database_take_the_writer_pool(dagbag):
    dag = dagbag.dags["cx_pipeline"]
    for t in dag.tasks:
        if t.task_id in BUILD_DB_TASKS or t.task_id.startswith("load_"):
            assert t.pool == "cxw_build_db", f"{t.task_id} opens the build DB but is in pool {t.pool}"
        if t.task_id.startswith("extract_"):
            assert t.pool != "cxw_build_db", "extractors never open the warehouse"


def test_each_source_is_loaded_as_soon_as_its_own_extract_is_done(dagbag):
    from cxw import SOURCES

    dag = dagbag.dags["cx_pipeline"]
    for s in SOURCES:
        # only its own extract upstream: GA4 loads while HubSpot is still being read
        assert dag.get_task(f"load_{s}").upstream_task_ids == {f"extract_{s}"}, s
    assert {f"load_{s}" for s in SOURCES} <= dag.get_task("validate_raw").upstream_task_ids
    assert {t.task_id for t in dag.tasks if t.task_id.startswith("load_")} == {f"load_{s}" for s in SOURCES}
    order = ["validate_raw", "dbt_build", "analyze", "validate", "publish", "export_alerts", "summarize"]
    for a, b in zip(order, order[1:]):
        assert a in dag.get_task(b).upstream_task_ids, f"{b} must run after {a}"


def test_a_build_with_nothing_new_skips_the_tasks_between_it_and_the_summary_except_the_alert_export(dagbag):
    """Issue 15: alerts of the published generation that a crash after publish or a webhook outage kept from being
    handed over go out on the next run, also when it has nothing new to build: export_alerts is not skipped with
    validate and publish, and runs after a skipped publish (none_failed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cx_pipeline_module", REPO / "dags" / "cx_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dag = dagbag.dags["cx_pipeline"]
    between = dag.get_task("dbt_build").get_flat_relative_ids(upstream=False) - {"summarize"}
    assert set(mod.SKIPPED_WHEN_UNCHANGED) == between - {"export_alerts"}
    assert str(dag.get_task("export_alerts").trigger_rule) in ("none_failed", "TriggerRule.NONE_FAILED")


def test_gate_and_alert_tasks_are_wired_fail_closed(dagbag):
    """publish only runs when everything upstream succeeded, export_alerts when nothing upstream failed (it also
    runs after a publish skipped for want of anything new); the summary always runs (it prints the gate's reason)
    and is the only leaf, so a blocked run ends failed; export_alerts never takes the writer pool (it reads only
    the published file, like BI) and is retried (a webhook outage is transient)."""
    dag = dagbag.dags["cx_pipeline"]
    for tid in ("validate_raw", "dbt_build", "validate", "publish"):
        assert str(dag.get_task(tid).trigger_rule) in ("all_success", "TriggerRule.ALL_SUCCESS"), tid
    assert str(dag.get_task("export_alerts").trigger_rule) in ("none_failed", "TriggerRule.NONE_FAILED")
    assert str(dag.get_task("summarize").trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")
    assert [t.task_id for t in dag.leaves] == ["summarize"]
    alerts = dag.get_task("export_alerts")
    assert alerts.pool != "cxw_build_db" and alerts.retries >= 1 and alerts.execution_timeout is not None
    assert {f"extract_{s}" for s in __import__("cxw").SOURCES} <= dag.get_task("validate_raw").upstream_task_ids


def test_every_scheduled_interval_is_non_empty(dagbag):
    from airflow.timetables.base import DataInterval

    for dag in dagbag.dags.values():
        tt = dag.timetable
        assert tt.periodic, f"{dag.dag_id} is not scheduled"
        last = None
        for _ in range(5):
            info = tt.next_dagrun_info(last_automated_data_interval=last, restriction=_restriction(dag))
            assert info is not None
            di: DataInterval = info.data_interval
            assert di.start < di.end, f"{dag.dag_id}: empty data interval {di}"
            last = di
        manual = tt.infer_manual_data_interval(run_after=datetime(2025, 7, 1, tzinfo=timezone.utc))
        assert manual.start < manual.end


def _restriction(dag):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)


def test_dag_file_parses_without_config_and_without_heavy_imports():
    """Top-level code must stay light: parse in a fresh interpreter with no CXW_* config at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXW_")}
    # Airflow's own import dominates (~1-2 s); our modules must add nothing heavy (no duckdb, dbt, GE, dlt imports).
    code2 = ("import sys, runpy; runpy.run_path('dags/cx_pipeline.py'); "
             "heavy=[m for m in ('duckdb','dbt','great_expectations','dlt','pandas') if m in sys.modules]"
             " + sorted(m for m in sys.modules if m.startswith('extractors.')); "
             "print('HEAVY=' + ','.join(heavy))")
    out2 = subprocess.run([sys.executable, "-c", code2], cwd=REPO, env=env, capture_output=True, text=True)
    assert out2.returncode == 0, out2.stderr[-2000:]
    line = [ln for ln in out2.stdout.splitlines() if ln.startswith("HEAVY=")][-1]
    heavy = [m for m in line[len("HEAVY="):].split(",") if m]
    # `extractors` itself (its __init__: the list of sources, cxw.SOURCES) is constants only; no source package
    assert not [m for m in heavy if m in {"duckdb", "dbt", "great_expectations", "dlt"}
                or m.startswith("extractors.")], heavy


def test_the_extract_mode_follows_airflows_run_type_enum():
    """What a task receives as `dag_run.run_type` under Airflow 3 is the task SDK's str-Enum (str() is
    "DagRunType.BACKFILL"): a backfill extracts in window mode, every other run type incrementally. The whole path
    through `airflow backfill create` and a scheduler is tests/e2e/test_backfill_window_mode.py."""
    from airflow.sdk.api.datamodels._generated import DagRunType

    from cxw.tasks import extract_mode

    assert str(DagRunType.BACKFILL) != "backfill"  # why a text test of str(run_type) cannot work
    assert extract_mode(DagRunType.BACKFILL) == "window"
    assert {extract_mode(t) for t in DagRunType if t is not DagRunType.BACKFILL} == {"incremental"}
    assert extract_mode(None) == "incremental"


@pytest.mark.parametrize("schedule, hours", [("daily", 24), ("hourly", 1)])
def test_cxw_schedule_sets_the_length_of_the_same_dags_data_intervals(tmp_path, schedule, hours):
    """CXW_SCHEDULE=hourly runs the same DAG (same tasks) with one-hour data intervals; daily (the default) one day.
    The DAG file is imported as the scheduler does (a DagBag) with the setting in the environment."""
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_SCHEDULE", schedule)
        if "AIRFLOW_HOME" not in os.environ:
            mp.setenv("AIRFLOW_HOME", str(tmp_path))
        if "AIRFLOW__CORE__LOAD_EXAMPLES" not in os.environ:
            mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        bag = DagBag(dag_folder=str(REPO / "dags" / "cx_pipeline.py"))
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags["cx_pipeline"]
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=_restriction(dag))
    assert info.data_interval.end - info.data_interval.start == timedelta(hours=hours)
    import pendulum  # what the scheduler hands a timetable (an hourly cron calls in_timezone on it)

    manual = dag.timetable.infer_manual_data_interval(run_after=pendulum.datetime(2025, 7, 1, 14, 30, tz="UTC"))
    assert manual.end - manual.start == timedelta(hours=hours)
    assert {t.task_id for t in dag.tasks} >= {"extract_ga4", "extract_hubspot", "extract_odoo", "dbt_build", "publish"}


def test_an_unknown_cxw_schedule_is_an_import_error_naming_the_setting(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_SCHEDULE", "every5min")
        if "AIRFLOW_HOME" not in os.environ:
            mp.setenv("AIRFLOW_HOME", str(tmp_path))
        if "AIRFLOW__CORE__LOAD_EXAMPLES" not in os.environ:
            mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        bag = DagBag(dag_folder=str(REPO / "dags" / "cx_pipeline.py"))
    assert "CXW_SCHEDULE" in " ".join(bag.import_errors.values())
