"""`cxw_tools.airflow_local.airflow_commands`: `prepare_airflow`'s Airflow CLI commands run one after the other in one
Python process (one Airflow import instead of three); the first that fails stops the rest and is named. And
`cxw_tools.demo.run_state`, the state of a DAG run read from the SQLite metadata DB without an Airflow start-up."""

from __future__ import annotations

import pytest


def test_commands_run_in_order_in_one_process_and_the_failing_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    for k in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.delenv(k, raising=False)
    from cxw_tools.airflow_local import airflow_commands

    proc = airflow_commands([["version"], ["version"]])
    assert proc.stderr.count("cxw: airflow version") == 2
    assert len([ln for ln in proc.stdout.splitlines() if ln.strip()]) == 2  # each command printed its version

    with pytest.raises(RuntimeError, match=r"^airflow pools set only-a-name failed \(2\)") as exc:
        airflow_commands([["version"], ["pools", "set", "only-a-name"], ["version"]])
    assert str(exc.value).count("cxw: airflow version") == 1  # the command after the failing one did not run


def test_run_state_reads_the_latest_run_of_the_day_from_the_sqlite_metadata_db(tmp_path):
    """`cxw_tools.demo.run_state` (what `./cx demo` and the e2e tests report) reads the project-local SQLite metadata
    DB directly instead of starting `airflow dags list-runs` (issue 16.8): the latest run of the logical day wins,
    another DAG's or day's runs do not count, no run is 'unknown'. The real schema is read by every e2e test that
    asserts its run's state (e.g. tests/e2e/test_ga4_empty_first_delivery.py)."""
    import sqlite3

    from cxw_tools.demo import DAG_ID, run_state

    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    con.execute("create table dag_run (id integer primary key, dag_id text, logical_date text, run_after text, "
                "start_date text, state text)")
    con.executemany("insert into dag_run (dag_id, logical_date, run_after, start_date, state) values (?, ?, ?, ?, ?)", [
        (DAG_ID, "2025-06-22 00:00:00.000000", "2025-06-22 00:00:00.000000", "2026-12-07 01:00:00", "failed"),
        (DAG_ID, "2025-06-22 00:00:00.000000", "2025-06-22 00:00:00.000000", "2026-12-07 02:00:00", "success"),
        (DAG_ID, "2025-06-23 00:00:00.000000", "2025-06-23 00:00:00.000000", "2026-12-07 03:00:00", "running"),
        ("another_dag", "2025-06-24 00:00:00.000000", "2025-06-24 00:00:00.000000", "2026-12-07 03:00:00", "success"),
    ])
    con.commit()
    con.close()
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}", "AIRFLOW_HOME": str(tmp_path)}
    assert run_state("2025-06-22T00:00:00+00:00", env) == "success"
    assert run_state("2025-06-23", env) == "running"
    assert run_state("2025-06-24", env) == "unknown"


def test_the_airflow_cli_runner_makes_no_full_collection_while_airflow_starts(tmp_path, monkeypatch):
    """`cxw_tools.airflow_cli` (what `airflow()` and `prepare_airflow` start, issue 16.8): Airflow's import grows the
    heap by ~670,000 objects; with CPython's default thresholds that costs full collections of the whole heap (3 for
    `airflow version`, 9 = 1.5 CPU-s for a 3-task `dags test`). Through the runner the command runs with none. The
    command's own output and exit codes are unchanged (a usage error stays 2:
    `test_commands_run_in_order_in_one_process_and_the_failing_one_is_named`)."""
    import subprocess
    import sys

    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    code = ("import gc, cxw_tools.airflow_cli as cli; rc = cli.main(['version']); "
            "print('RESULT', rc, gc.get_stats()[2]['collections'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    import airflow

    assert airflow.__version__ in lines  # `airflow version` printed its version
    rc, full_collections = lines[-1].split()[1:]
    assert (rc, full_collections) == ("0", "0")


def test_the_airflow_cli_runner_ends_after_the_exit_handlers_without_the_interpreters_teardown(tmp_path, monkeypatch):
    """The runner's process ends like an exit up to the teardown: the atexit handlers run (Airflow disposes its
    engine, logging flushes) and the exit code is the command's, but the teardown - a last walk of the whole heap,
    ~1.5 CPU-s, and with DuckDB loaded (a `dags test` task) nanobind's leak report when the heap had been frozen - does
    not happen: an object in a reference cycle, which the teardown's collection would finalize, is never finalized."""
    import subprocess
    import sys

    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    code = ("import atexit, os, runpy, sys, duckdb\n"
            "duckdb.connect().execute('select 1').fetchall()\n"
            "class Cycle:\n"
            "    def __del__(self): os.write(1, b'TEARDOWN\\n')\n"
            "def last():\n"  # atexit runs last-registered first: this one last, after Airflow's handlers
            "    c = Cycle(); c.me = c\n"  # unreachable from here on: only a collection finalizes it
            "    print('ATEXIT', flush=True)\n"
            "atexit.register(last)\n"
            "sys.argv = ['cxw_tools.airflow_cli', 'version']\n"
            "runpy.run_module('cxw_tools.airflow_cli', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ATEXIT" in proc.stdout.splitlines(), proc.stdout[-2000:]
    assert "TEARDOWN" not in proc.stdout, "the interpreter's teardown ran (its collection finalized the cycle)"
    assert "nanobind" not in proc.stderr, proc.stderr[-2000:]
