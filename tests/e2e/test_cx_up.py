"""`./cx up --demo` on this machine, no Docker (issue 17.4): Airflow's api-server, scheduler (LocalExecutor),
dag-processor and triggerer on a PostgreSQL metadata database of their own; the scheduler runs one DAG run of the XS
demo company to a publish by itself; `./cx up` again starts nothing; `./cx down` leaves no process behind. One DAG
run: the scheduled run of the latest complete day, which the unpaused DAG gets at once."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy


def _pg(db: str, sql: str, params: dict | None = None, autocommit: bool = False):
    import sqlalchemy as sa

    eng = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
                           **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    try:
        with eng.connect() as con:
            res = con.execute(sa.text(sql), params or {})
            return res.fetchall() if res.returns_rows else None
    finally:
        eng.dispose()


def _http(url: str, body: dict | None = None, token: str | None = None) -> dict:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=60) as resp:
        return json.loads(resp.read())


def _expected_tables() -> set[str]:
    """Every model under dbt_project/models/marts/{core,kpi,cx} is a published table (schema = its folder); the
    intermediate models among the marts (marts/intermediate/, marts/core/intermediate/: schema intermediate) are not."""
    marts = REPO / "dbt_project" / "models" / "marts"
    return {f"{d.name}.{f.stem}" for d in marts.iterdir() if d.is_dir() and d.name != "intermediate"
            for f in d.rglob("*.sql") if "intermediate" not in f.relative_to(d).parts}


@pytest.mark.e2e
def test_cx_up_runs_the_dag_under_the_scheduler_to_a_publish_and_cx_down_leaves_no_process(tmp_path,
                                                                                           postgres_available):
    import duckdb

    from cxw_tools import up

    db = f"cxw_up_test_{secrets.token_hex(4)}"
    cxw_home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CXW_", "AIRFLOW_", "AIRFLOW__")) or k == "CXW_SHARED_DIR"}
    env.update({"CXW_HOME": str(cxw_home),
                "CXW_AIRFLOW_DB_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"})
    no_env_file = tmp_path / "empty.env"  # not the developer's <repo>/.env
    no_env_file.write_text("")
    home = cxw_home / "airflow-up"
    up_args = ["up", "--demo", "--scale", "XS", "--port", "0", "--env-file", str(no_env_file)]

    def cx(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "cx"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)

    tree: set[tuple[int, str | None]] = set()  # (pid, start time) of every process seen
    try:
        t0 = time.monotonic()
        first = cx(*up_args)
        up_s = time.monotonic() - t0
        assert first.returncode == 0, first.stdout + first.stderr
        pids = up.running(home)
        assert set(pids) == {*up.SERVICES, up.DEMO_SERVER}, (pids, first.stdout)
        state = json.loads((home / "up.json").read_text())
        assert f"{state['url']}/" in first.stdout and "./cx down" in first.stdout
        assert str(home / "simple_auth_manager_passwords.json.generated") in first.stdout
        print(first.stdout)
        health, deadline = None, time.monotonic() + 60
        while not up.healthy(health) and time.monotonic() < deadline:  # a busy api-server may answer late
            health = up._health(state["url"])
        assert up.healthy(health), health
        assert _pg(db, "select 1 from pg_database where datname = :d", {"d": db})  # created on the PostgreSQL
        assert _pg(db, "select slots from slot_pool where pool = 'cxw_build_db'") == [(1,)]
        assert _pg(db, "select is_paused from dag where dag_id = 'cx_pipeline'") == [(False,)]

        # the printed login works: admin's generated password gets a token the REST API accepts
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = _http(f"{state['url']}/auth/token", {"username": "admin", "password": password})["access_token"]
        assert _http(f"{state['url']}/api/v2/dags/cx_pipeline", token=token)["is_paused"] is False

        again = cx(*up_args)
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
        assert up.running(home) == pids  # the same processes, none started beside them
        schedulers = [p for p in up.processes_of(home) if up._cmdline(p, None).endswith("airflow scheduler")]
        assert schedulers == [pids["scheduler"]], [up._cmdline(p) for p in up.processes_of(home)]

        status = cx("status")
        assert status.returncode == 0 and f"scheduler      pid {pids['scheduler']}" in status.stdout, status.stdout
        assert "scheduler healthy" in status.stdout, status.stdout

        # the scheduler creates and runs the latest complete day's run by itself
        deadline = time.monotonic() + 1200
        runs = []
        while time.monotonic() < deadline:
            runs = _pg(db, "select run_id, run_type, state from dag_run where dag_id = 'cx_pipeline'")
            if runs and all(r[2] in ("success", "failed") for r in runs):
                break
            tree |= {(p, up._started(p)) for p in up.processes_of(home)}
            time.sleep(5)
        run_s = time.monotonic() - t0 - up_s
        tasks = _pg(db, "select task_id, state, try_number from task_instance where dag_id = 'cx_pipeline'")
        assert [(r[1], r[2]) for r in runs] == [("scheduled", "success")], (runs, tasks, f"logs in {home}/logs")
        assert dict((t, s) for t, s, _ in tasks)["publish"] == "success", tasks
        print(f"cx up: healthy in {up_s:.0f}s; the scheduled run succeeded {run_s:.0f}s later")

        published = cxw_home / "published" / "cx_warehouse.duckdb"
        con = duckdb.connect(str(published), read_only=True)
        try:
            tables = {f"{s}.{t}" for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('core', 'kpi', 'cx')").fetchall()}
            assert con.execute("select count(*) from core.fct_orders").fetchone()[0] > 0
        finally:
            con.close()
        assert _expected_tables() <= tables, sorted(_expected_tables() - tables)
        tree |= {(p, up._started(p)) for p in up.processes_of(home)}
    finally:
        down = cx("down", timeout=300)
        _pg("postgres", f'drop database if exists "{db}" with (force)', autocommit=True)

    assert down.returncode == 0, down.stdout + down.stderr
    assert len(tree) > len(up.SERVICES) + 1, tree  # the services' children (workers, log servers) were seen
    left = [p for p, t in tree if up._alive(p) and up._started(p) == t]
    assert not left, [up._cmdline(p) for p in left]
    assert up.processes_of(home) == set()
    assert not list((home / "pids").glob("*.pid"))
    assert "nothing was running" in cx("down").stdout
    assert cx("status").returncode == 1
