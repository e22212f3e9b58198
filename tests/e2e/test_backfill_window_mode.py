"""An Airflow 3 backfill (`airflow backfill create`) runs the extracts in window mode, through a real scheduler on
LocalExecutor (with the execution API server its workers report to): each backfill run reads exactly its data
interval, moves no cursor, and publishes. XS demo company; the extractors' state is first set by an incremental
extraction up to the demo's "now", as a deployment that has been running would have it."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy


def _cursors(state_root: Path) -> dict:
    out = {}
    for f in sorted(state_root.glob("*.json")):
        if f.name == "raw_gate.json":
            continue
        ents = json.loads(f.read_text()).get("entities", {})
        out[f.stem] = {e: v.get("cursor") for e, v in ents.items()}
    return out


def _loads(raw_root: Path) -> dict[str, dict]:
    return {m.parent.name: json.loads(m.read_text()) for m in raw_root.glob("*/*/*/_load.json")}


def _runs(airflow_db: Path) -> list[tuple]:
    con = sqlite3.connect(str(airflow_db), timeout=10)
    try:
        return con.execute("select run_id, run_type, state, data_interval_start, data_interval_end from dag_run "
                           "where dag_id = 'cx_pipeline' order by logical_date").fetchall()
    finally:
        con.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@contextlib.contextmanager
def _scheduler(env: dict, log_file: Path):
    """`airflow scheduler` (LocalExecutor) in its own process group; on exit the group is terminated (the scheduler
    and the worker processes it started), then killed if it has not ended within 60 s."""
    import os
    import signal

    from cxw_tools.demo import _bin

    with log_file.open("w") as fh:
        proc = subprocess.Popen([_bin("airflow"), "scheduler"], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # LocalExecutor workers of a scheduler that ended on SIGTERM may linger briefly: end the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.e2e
def test_an_airflow_backfill_extracts_in_window_mode_and_moves_no_cursor(tmp_path, monkeypatch):
    from cxw import SOURCES, tasks
    from cxw_tools.bench import harness as bench
    from cxw.config import paths
    from cxw_tools.demo import airflow, demo_server, source_env
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START

    for k in ("CXW_HOME", "AIRFLOW_HOME", "CXW_BUILD_DB"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    as_of = DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS)
    data, manifest = bench._generate(tmp_path, "XS", 7, as_of.isoformat())
    tpl = bench._airflow_template(tmp_path)
    home = tmp_path / "rep"
    bench._fresh_home(home, tpl)
    env = bench._home_env(home, {})
    p = paths()
    airflow_db = p.airflow_home / "airflow.db"
    utc = dt.timezone.utc
    now = dt.datetime.combine(as_of, dt.time(), utc)
    days = [as_of - dt.timedelta(days=4), as_of - dt.timedelta(days=3)]  # the two backfilled logical dates

    with demo_server(data) as base_url:
        src = source_env(data, manifest, base_url)
        env.update(src)
        for k, v in src.items():
            monkeypatch.setenv(k, v)
        # the deployment so far: an incremental extraction up to the demo's now sets every cursor
        for s in SOURCES:
            tasks.extract(s, now - dt.timedelta(days=1), now, mode="incremental")
        cursors = _cursors(p.state)
        before = _loads(p.raw)
        assert cursors and all(any(c for c in ents.values()) for ents in cursors.values()), cursors

        with bench.execution_api(env, home / "logs" / "api-server.log") as (api_env, _pid):
            env.update(api_env)
            # no scheduled run beside the backfill: only the backfill's runs are created
            env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(_free_port())  # not the shared default 8793
            airflow("dags", "unpause", "cx_pipeline", env=env)  # a paused DAG's backfill runs are not started
            # created before the scheduler starts: both write the SQLite metadata DB, and under load (parallel test
            # workers) the CLI's insert waited out SQLite's lock timeout behind a scheduler transaction
            airflow("backfill", "create", "--dag-id", "cx_pipeline", "--from-date", days[0].isoformat(),
                    "--to-date", days[1].isoformat(), "--max-active-runs", "1", env=env)
            with _scheduler(env, home / "logs" / "scheduler.log"):
                deadline = time.time() + 600
                while True:
                    runs = _runs(airflow_db)
                    if len(runs) == 2 and all(r[2] in ("success", "failed") for r in runs):
                        break
                    assert time.time() < deadline, f"backfill not finished in 600 s: {runs}; " \
                                                   f"see {home / 'logs' / 'scheduler.log'}"
                    time.sleep(3)

    assert [(r[1], r[2]) for r in runs] == [("backfill", "success")] * 2, runs
    intervals = {(bench._utc_epoch(r[3]), bench._utc_epoch(r[4])) for r in runs}
    assert intervals == {(dt.datetime.combine(d, dt.time(), utc).timestamp(),
                          dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), utc).timestamp()) for d in days}

    # every load of the backfill was extracted in window mode; each source read each interval exactly
    new = {k: v for k, v in _loads(p.raw).items() if k not in before}
    assert new and {m["mode"] for m in new.values()} == {"window"}, {k: m["mode"] for k, m in new.items()}
    from extractors import OPTIONAL_SOURCES

    for s in (s for s in SOURCES if s not in OPTIONAL_SOURCES):  # an optional source, unset, lands nothing
        windows = {(bench._utc_epoch(m["window_start"]), bench._utc_epoch(m["window_end"]))
                   for m in new.values() if m["source"] == s and m.get("cursor_before") is not None}
        assert intervals <= windows, (s, windows)
    # no cursor moved (never backwards, never forwards): the next incremental run continues where it was.
    # (Snapshot entities — a complete copy every run, Odoo tables without a cursor column — read no cursor; the
    # runner stores the interval end as theirs in incremental runs and None in window runs, which reads nothing.)
    snapshots = {(m["source"], m["entity"]) for m in _loads(p.raw).values()
                 if m.get("full_snapshot") or m.get("snapshot")}
    after = _cursors(p.state)
    assert {s: {e: c for e, c in ents.items() if (s, e) not in snapshots} for s, ents in after.items()} == \
        {s: {e: c for e, c in ents.items() if (s, e) not in snapshots} for s, ents in cursors.items()}
    # and both runs published their interval
    for r in runs:
        summary = json.loads((p.runs / tasks._safe(r[0]) / "summary.json").read_text())
        assert summary["status"] == "published", summary.get("reason")
