"""`cxw_tools.up` without Airflow: what `./cx down` stops (and what it must not), and the metadata database it creates.
The whole `./cx up` under a real scheduler: tests/e2e/test_cx_up.py."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time


from cxw_tools import up

# a "service" that, like Airflow's task supervisor, starts a child in a process group (session) of its own; the child
# does not show AIRFLOW_HOME in its environment, as an Airflow process that set its title (setproctitle) does not
_SERVICE = """
import os, subprocess, sys, time
env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True, env=env)
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""


def _kill(*procs: tuple[int, str | None]) -> None:
    """The test's own processes (pid, start time), whatever the outcome: a failing test must not leave them running.
    A pid that names another process by now is left alone."""
    import signal

    for p, started in procs:
        if up._alive(p) and up._started(p) == started:
            os.kill(p, signal.SIGKILL)


def _wait_for(f, timeout=30):
    deadline = time.monotonic() + timeout
    while not (f.exists() and f.read_text()):
        assert time.monotonic() < deadline, f"{f} not written"
        time.sleep(0.05)
    return int(f.read_text())


def test_cx_down_stops_a_service_and_its_child_in_another_process_group(tmp_path):
    home = tmp_path / "airflow-up"
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    child_file = tmp_path / "child.pid"
    pid = up._spawn(home, "scheduler", [sys.executable, "-c", _SERVICE, str(child_file)], env)
    child = _wait_for(child_file)
    procs = [(pid, up._started(pid)), (child, up._started(child))]
    try:
        assert os.getpgid(child) != os.getpgid(pid)  # killpg of the service's group does not reach it
        assert up.running(home) == {"scheduler": pid}
        assert {pid, child} <= up.processes_of(home)

        stopped = up.stop(home, timeout=10)

        assert stopped == ["scheduler"]
        deadline = time.monotonic() + 10
        while (up._alive(pid) or up._alive(child)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not up._alive(pid) and not up._alive(child)
        assert not (home / "pids" / "scheduler.pid").exists()
    finally:
        _kill(*procs)


def test_a_pid_file_whose_pid_now_names_another_process_is_not_a_running_service(tmp_path):
    """After a crash and a reboot, a pid file's pid may belong to an unrelated program: same pid, other start time.
    `./cx up` must not take it for a running service, `./cx down` must not kill it."""
    home = tmp_path / "airflow-up"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (home / "pids").mkdir(parents=True)
        (home / "pids" / "scheduler.pid").write_text(f"{other.pid} {int(up._started(other.pid)) - 100}\n")
        assert up.running(home) == {}
        assert up.stop(home, timeout=5) == []
        assert other.poll() is None and up._alive(other.pid)
        assert not (home / "pids" / "scheduler.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_cx_up_creates_its_metadata_database_when_missing(postgres_available):
    import sqlalchemy as sa

    db = f"cxw_up_unit_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        assert up.ensure_database(url) is True
        assert up.ensure_database(url) is False  # there now: left as it is
        with admin.connect() as con:
            assert con.execute(sa.text("select 1 from pg_database where datname = :d"), {"d": db}).first()
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'drop database if exists "{db}"'))
        admin.dispose()


def test_the_services_share_one_jwt_secret_and_fernet_key_kept_private(tmp_path, monkeypatch):
    """The api-server checks the task tokens the scheduler signs: every service gets the same secret, across
    `./cx up` calls; the file holding it is readable by its owner only."""
    for k in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        monkeypatch.delenv(k, raising=False)
    home = tmp_path / "airflow-up"
    home.mkdir()
    env1, _ = up.service_env(home, 8080, "127.0.0.1", "postgresql+psycopg2://postgres@127.0.0.1/x")
    env2, state = up.service_env(home, 9090, "127.0.0.1", "postgresql+psycopg2://postgres@127.0.0.1/x")
    for k in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert env1[k] and env1[k] == env2[k]
    assert (home / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert env2["AIRFLOW_HOME"] == str(home)
    assert env2["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env2["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9090/execution/"
    assert state["url"] == "http://127.0.0.1:9090"


def test_an_unconfigured_cx_up_fails_in_seconds_naming_the_settings_and_leaves_nothing_behind(tmp_path,
                                                                                             postgres_available):
    import sqlalchemy as sa

    from cxw.config import REPO_ROOT

    db = f"cxw_up_unit_{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "AIRFLOW_", "AIRFLOW__"))}
    env.update({"CXW_HOME": str(tmp_path / "home"),
                "CXW_AIRFLOW_DB_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"})
    (tmp_path / "empty.env").write_text("")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "cxw_tools", "up", "--port", "0", "--env-file", str(tmp_path / "empty.env")],
                         env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - t0
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not configured - nothing was started" in res.stderr
    for setting in ("CXW_ODOO_URL", "CXW_HUBSPOT_TOKEN", "CXW_GA4_EXPORT_URL", "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS"):
        assert setting in res.stderr, res.stderr
    assert took < 120, took  # no migrate, no service started (the Python start-up alone is seconds here)
    home = tmp_path / "home" / "airflow-up"
    assert up.running(home) == {} and not list(home.glob("pids/*.pid"))
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as con:
            created = con.execute(sa.text("select 1 from pg_database where datname = :d"), {"d": db}).first()
            if created:
                con.execute(sa.text(f'drop database "{db}"'))
        assert not created, "the metadata database was created for a deployment that cannot start"
    finally:
        admin.dispose()


def test_cx_up_with_only_some_services_running_stops_them_before_starting_all(tmp_path, monkeypatch, capsys):
    """One service crashed: `./cx up` does not start a second copy of those still running beside new ones; it stops
    them first. (Here the start then stops at the unconfigured sources: nothing of the old services is left.)"""
    for k in list(os.environ):
        if k.startswith(("CXW_", "AIRFLOW_CONN_", "AIRFLOW__")) and k not in ("CXW_SHARED_DIR", "CXW_REQUIRE_SERVICES"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    home = up.up_home()
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    child_file = tmp_path / "child.pid"
    pid = up._spawn(home, "scheduler", [sys.executable, "-c", _SERVICE, str(child_file)], env)
    child = _wait_for(child_file)
    procs = [(pid, up._started(pid)), (child, up._started(child))]
    try:
        assert up.running(home) == {"scheduler": pid}
        (tmp_path / "empty.env").write_text("")

        assert up.up(env_file=tmp_path / "empty.env", port=0) == 1  # the sources are not configured

        out = capsys.readouterr().out
        assert "only scheduler of" in out and "stopping them" in out, out
        deadline = time.monotonic() + 10
        while (up._alive(pid) or up._alive(child)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not up._alive(pid) and not up._alive(child)
        assert up.running(home) == {}
    finally:
        _kill(*procs)


def test_cx_up_with_celery_and_no_broker_fails_naming_the_broker_setting_and_starts_nothing(tmp_path):
    """`./cx up --executor celery` checks the Redis broker before anything else: without it the workers would retry
    forever behind a healthy-looking api-server. Nothing is started, not even the demo server."""
    from cxw.config import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "AIRFLOW_", "AIRFLOW__"))}
    env.update({"CXW_HOME": str(tmp_path / "home"), "CXW_AIRFLOW_BROKER_URL": "redis://:hunter2@127.0.0.1:1/0"})
    (tmp_path / "empty.env").write_text("")
    res = subprocess.run([sys.executable, "-m", "cxw_tools", "up", "--executor", "celery", "--demo", "--port", "0",
                          "--env-file", str(tmp_path / "empty.env")],
                         env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot reach the Celery broker redis://:***@127.0.0.1:1/0 (CXW_AIRFLOW_BROKER_URL)" in res.stderr, res.stderr
    assert "hunter2" not in res.stdout + res.stderr
    home = tmp_path / "home" / "airflow-up"
    assert up.running(home) == {} and not list(home.glob("pids/*.pid"))
    assert not (home / "logs" / "demo-server.log").exists()
