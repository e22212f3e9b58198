"""`./cx up --executor celery --workers 2` on this machine (issue 21 point 2): the scheduler with the CeleryExecutor,
Redis on 127.0.0.1:6379 as the broker, a PostgreSQL database of the test's own as metadata database and Celery result
backend, and two `airflow celery worker` processes; the scheduler runs one DAG run of the XS demo company to a
publish with the extract tasks spread over both workers; `./cx down` stops everything it started.

Which worker ran a task: Airflow records the Celery task id it queued a task instance under
(task_instance.external_executor_id); the worker that received it logs that id (`Task ...execute_workload[<id>]
received`). task_instance.hostname cannot tell them apart: both workers are on this host. Each worker runs one task at
a time (--worker-concurrency 1; Airflow's Celery defaults: prefetch multiplier 1, late acks), so the extract tasks,
queued together, cannot all go to one worker while the other waits. The broker keys carry a prefix of the test's own
(Redis db 0 is shared with others on this machine) and are deleted afterwards with the database."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from test_cx_up import _pg

REPO = Path(__file__).resolve().parents[2]

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy
BROKER = "redis://127.0.0.1:6379/0"


@pytest.mark.e2e
def test_cx_up_celery_spreads_the_extract_tasks_over_two_workers_to_a_publish_and_cx_down_stops_them(
        tmp_path, postgres_available):
    import duckdb
    import redis

    from cxw_tools import up

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {BROKER}: {exc}")
    tag = secrets.token_hex(4)
    db = f"cxw_up_celery_test_{tag}"
    prefix = f"cxw-up-celery-test-{tag}:"
    cxw_home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CXW_", "AIRFLOW_", "AIRFLOW__")) or k == "CXW_SHARED_DIR"}
    env.update({"CXW_HOME": str(cxw_home),
                "CXW_AIRFLOW_DB_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
                "CXW_AIRFLOW_EXECUTOR": "celery",
                "CXW_AIRFLOW_BROKER_URL": BROKER,
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix})
    no_env_file = tmp_path / "empty.env"  # not the developer's <repo>/.env
    no_env_file.write_text("")
    home = cxw_home / "airflow-up"
    workers = up.worker_names(2)

    def cx(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "cx"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)

    tree: set[tuple[int, str | None]] = set()  # (pid, start time) of every process seen
    try:
        t0 = time.monotonic()
        first = cx("up", "--demo", "--scale", "XS", "--port", "0", "--env-file", str(no_env_file), "--workers", "2",
                   "--worker-concurrency", "1")
        up_s = time.monotonic() - t0
        assert first.returncode == 0, first.stdout + first.stderr
        print(first.stdout)
        pids = up.running(home)
        assert set(pids) == {*up.SERVICES, up.DEMO_SERVER, *workers}, (pids, first.stdout)
        state = json.loads((home / "up.json").read_text())
        assert state["executor"] == "celery" and set(state["workers"]) == set(workers), state
        for name in workers:  # real Celery workers, each under its own name
            cmd = up._cmdline(pids[name], None)
            assert "celery worker" in cmd and f"--celery-hostname {name}@" in cmd, cmd
        status = cx("status")
        assert status.returncode == 0, status.stdout
        assert all(f"{name:<14} pid {pids[name]}" in status.stdout for name in workers), status.stdout

        # the scheduler creates and runs the latest complete day's run by itself, through the workers
        deadline = time.monotonic() + 1200
        runs = []
        while time.monotonic() < deadline:
            runs = _pg(db, "select run_id, run_type, state from dag_run where dag_id = 'cx_pipeline'")
            if runs and all(r[2] in ("success", "failed") for r in runs):
                break
            tree |= {(p, up._started(p)) for p in up.processes_of(home)}
            time.sleep(5)
        run_s = time.monotonic() - t0 - up_s
        tasks = _pg(db, "select task_id, state, external_executor_id from task_instance "
                        "where dag_id = 'cx_pipeline'")
        assert [(r[1], r[2]) for r in runs] == [("scheduled", "success")], (runs, tasks, f"logs in {home}/logs")
        assert dict((t, s) for t, s, _ in tasks)["publish"] == "success", tasks
        print(f"cx up --executor celery: healthy in {up_s:.0f}s; the scheduled run succeeded {run_s:.0f}s later")

        # every task went through Celery, received by exactly one of the two workers; the extracts by both
        logs = {name: (home / "logs" / f"{name}.log").read_text(errors="replace") for name in workers}
        ran_on = {}
        for task_id, _, celery_id in tasks:
            assert celery_id, (task_id, "no Celery task id: not run by the CeleryExecutor")
            receivers = [name for name in workers if f"[{celery_id}] received" in logs[name]]
            assert len(receivers) == 1, (task_id, celery_id, receivers)
            ran_on[task_id] = receivers[0]
        extracts = {t: w for t, w in ran_on.items() if t.startswith("extract_")}
        print(f"tasks per worker: { {w: sorted(t for t, v in ran_on.items() if v == w) for w in workers} }")
        assert len(extracts) >= 2 and set(extracts.values()) == set(workers), extracts
        assert _pg(db, "select count(*) from celery_taskmeta")[0][0] >= len(tasks)  # the result backend

        published = cxw_home / "published" / "cx_warehouse.duckdb"
        con = duckdb.connect(str(published), read_only=True)
        try:
            assert con.execute("select count(*) from core.fct_orders").fetchone()[0] > 0
        finally:
            con.close()
        tree |= {(p, up._started(p)) for p in up.processes_of(home)}
    finally:
        down = cx("down", timeout=300)
        _pg("postgres", f'drop database if exists "{db}" with (force)', autocommit=True)
        r = redis.Redis.from_url(BROKER)
        keys = list(r.scan_iter(match=f"{prefix}*"))
        if keys:
            r.delete(*keys)

    assert down.returncode == 0, down.stdout + down.stderr
    assert all(name in down.stdout for name in workers), down.stdout
    left = [p for p, t in tree if up._alive(p) and up._started(p) == t]
    assert not left, [up._cmdline(p) for p in left]
    assert up.processes_of(home) == set()
    assert not list((home / "pids").glob("*.pid")) and not list((home / "run").glob("*.pid"))
    assert cx("status").returncode == 1
