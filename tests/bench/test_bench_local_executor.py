"""The bench runs the real DAG under LocalExecutor (`airflow dags test --use-executor` + an execution API server), as
a deployment would: the extract tasks must overlap in time, the run must publish, and every task's CPU must be
measured from its own processes. One full run of the XS demo company."""
from __future__ import annotations

import datetime as dt

import pytest

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy


@pytest.mark.e2e
def test_the_dag_runs_under_local_executor_with_parallel_extracts(tmp_path, monkeypatch):
    from cxw import SOURCES
    from cxw_tools.bench import harness as bench
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START

    for k in ("CXW_HOME", "AIRFLOW_HOME", "CXW_BUILD_DB"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    as_of = (DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS)).isoformat()
    data, manifest = bench._generate(tmp_path, "XS", 7, as_of)
    tpl = bench._airflow_template(tmp_path)
    home = tmp_path / "rep"
    bench._fresh_home(home, tpl)

    run = bench.dag_run("full", home, data, manifest, as_of, {}, executor="local")

    assert run["state"] == "success" and run["publication_status"] == "published", run
    extracts = {k: v for k, v in run["tasks"].items() if k.startswith("extract_")}
    # one extract task per source (the review-file source lands nothing when unconfigured, but runs)
    assert sorted(extracts) == sorted(f"extract_{s}" for s in SOURCES)
    assert all(t["state"] == "success" for t in extracts.values())
    # no task needed a retry: `dags test --use-executor` ignores the writer pool, so the five load_<source> tasks
    # start together and must wait for the build database's lock instead of failing on it
    assert {k: t["try_number"] for k, t in run["tasks"].items() if t.get("try_number", 1) != 1} == {}
    assert run["tasks"]["load_raw"]["aggregate_of"] == sorted(f"load_{s}" for s in SOURCES)
    # in parallel: the extracts' busy time is well under the sum of their walls
    assert run["extract_span_s"] < 0.8 * run["extract_wall_s"], (run["extract_span_s"], run["extract_wall_s"])
    assert run["task_busy_s"] < run["sum_task_wall_s"]
    # the CPU of dbt (a child process of the task runner) is the dbt_build task's
    assert run["tasks"]["dbt_build"]["cpu_s"] > 1.0, run["tasks"]["dbt_build"]
    assert all(t.get("cpu_s", 0) > 0 for k, t in run["tasks"].items() if t["state"] == "success"), run["tasks"]
    assert run["e2e_wall_s"] <= run["process_wall_s"]
