"""Erase and pipeline tasks exclude each other through the warehouse lock (cxw/warehouse_lock.py, issue 15.6), in
real processes: `python -m cxw_tools erase` against a process holding a pipeline task's share of the lock, and a pipeline
task against a process holding an erasure. `./cx retention` and `./cx rollback` take the lock exclusively too. (The whole story on a real pipeline state, with a later run that must not
bring the person back: tests/e2e/test_erase.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HOLD = r"""
import sys
from cxw.warehouse_lock import erasure, maintenance, pipeline_task
with (erasure() if sys.argv[1] == "erase" else maintenance(sys.argv[1]) if sys.argv[1] in ("retention", "rollback")
      else pipeline_task(sys.argv[1])):
    print("HOLDING", flush=True)
    sys.stdin.readline()
"""

TASK = r"""
import sys, time
from cxw.warehouse_lock import pipeline_task
t0 = time.monotonic()
with pipeline_task("publish") as waited:
    print("RAN", round(waited, 2), flush=True)
"""


def _env(home: Path, wait_s: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(CXW_HOME=str(home), CXW_BUILD_DB_LOCK_WAIT_S=wait_s)
    env.pop("CXW_BUILD_DB", None)
    env.pop("CXW_DBT_TARGET", None)
    return env


def _hold(home: Path, what: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, what], cwd=REPO, env=_env(home, "5"), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "HOLDING", proc.stderr.read()
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(30) == 0


def test_erase_during_a_pipeline_task_waits_then_gives_up_naming_it_and_changing_nothing(tmp_path):
    (tmp_path / "raw").mkdir()
    holder = _hold(tmp_path, "load_hubspot")
    try:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "cxw_tools", "erase", "--email", "jane.planted@example.org"],
                              cwd=REPO, env=_env(tmp_path, "2"), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
    finally:
        _release(holder)
    assert proc.returncode == 75, (proc.returncode, proc.stderr[-2000:])
    assert "load_hubspot (pid" in proc.stderr and "Nothing was erased or changed" in proc.stderr, proc.stderr
    assert took >= 2.0
    assert "jane.planted" not in proc.stdout + proc.stderr
    assert not (tmp_path / "state").exists()  # no audit record: nothing happened
    # once the task has finished, erase runs (here: finds no one, exit 1, still nothing changed)
    proc = subprocess.run([sys.executable, "-m", "cxw_tools", "erase", "--email", "jane.planted@example.org"],
                          cwd=REPO, env=_env(tmp_path, "2"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "nothing erased" in proc.stderr, proc.stderr[-2000:]


def test_a_pipeline_task_starting_during_an_erasure_waits_for_it_or_fails_saying_so(tmp_path):
    holder = _hold(tmp_path, "erase")
    try:
        quick = subprocess.run([sys.executable, "-c", TASK], cwd=REPO, env=_env(tmp_path, "1"), capture_output=True,
                               text=True, timeout=120)
        assert quick.returncode != 0 and "RAN" not in quick.stdout
        assert "publish: an erasure is running (erase (pid" in quick.stderr, quick.stderr[-2000:]
        patient = subprocess.Popen([sys.executable, "-c", TASK], cwd=REPO, env=_env(tmp_path, "60"), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        assert patient.poll() is None  # still waiting
    finally:
        _release(holder)
    out, err = patient.communicate(timeout=60)
    assert patient.returncode == 0, err
    assert out.startswith("RAN") and float(out.split()[1]) >= 2.0, out


def test_pipeline_tasks_never_wait_for_each_other_here(tmp_path):
    """Tasks share the lock (DuckDB's lock and the pool order them): only an erasure makes them wait."""
    holder = _hold(tmp_path, "extract_hubspot")
    try:
        proc = subprocess.run([sys.executable, "-c", TASK], cwd=REPO, env=_env(tmp_path, "1"), capture_output=True,
                              text=True, timeout=120)
    finally:
        _release(holder)
    assert proc.returncode == 0 and proc.stdout.startswith("RAN 0"), proc.stderr[-2000:]


def _two_generations(home: Path, monkeypatch) -> list[str]:
    """Two real generations published into `home` (the second is what BI reads)."""
    import duckdb

    monkeypatch.setenv("CXW_HOME", str(home))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    monkeypatch.setenv("CXW_DBT_TARGET", "duckdb")
    from cxw.config import paths
    from cxw.publish import publish

    p = paths()
    stems = []
    for n, value in enumerate((10.0, 20.0)):
        p.warehouse_dir.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(p.build_db))
        con.execute("create schema if not exists kpi")
        con.execute("create or replace table kpi.kpi_daily as select 'nps' as kpi, ? as value", [value])
        con.close()
        stems.append(publish(f"r{n}", None, None)["generation_id"])
    return stems


def test_rollback_during_a_pipeline_task_waits_for_it_or_gives_up_switching_nothing(tmp_path, monkeypatch):
    from cxw.publish import current_generation

    stems = _two_generations(tmp_path, monkeypatch)
    holder = _hold(tmp_path, "publish")
    try:
        t0 = time.monotonic()
        quick = subprocess.run([sys.executable, "-m", "cxw_tools", "rollback"], cwd=REPO, env=_env(tmp_path, "2"),
                               capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        assert quick.returncode == 75, (quick.returncode, quick.stderr[-2000:])
        assert "rollback: the warehouse is in use (publish (pid" in quick.stderr, quick.stderr[-2000:]
        assert "Nothing was changed" in quick.stderr and took >= 2.0
        assert current_generation() == stems[1]
        patient = subprocess.Popen([sys.executable, "-m", "cxw_tools", "rollback"], cwd=REPO, env=_env(tmp_path, "60"),
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        assert patient.poll() is None  # still waiting for the publish
        assert current_generation() == stems[1]
    finally:
        _release(holder)
    out, err = patient.communicate(timeout=60)
    assert patient.returncode == 0, err[-2000:]
    assert current_generation() == stems[0]


def test_retention_during_a_pipeline_task_waits_for_it_or_gives_up_dropping_nothing(tmp_path):
    gens = tmp_path / "published" / "generations"
    gens.mkdir(parents=True)
    old = gens / "20200101T000000000000Z-0000aaaa.duckdb"   # published years ago, not what BI reads
    old.write_bytes(b"")
    env = lambda wait: {**_env(tmp_path, wait), "CXW_RETENTION_DAYS": "30"}  # noqa: E731
    holder = _hold(tmp_path, "load_odoo")
    try:
        quick = subprocess.run([sys.executable, "-m", "cxw_tools", "retention"], cwd=REPO, env=env("1"),
                               capture_output=True, text=True, timeout=120)
        assert quick.returncode == 75, (quick.returncode, quick.stderr[-2000:])
        assert "retention: the warehouse is in use (load_odoo (pid" in quick.stderr, quick.stderr[-2000:]
        assert old.exists()
        patient = subprocess.Popen([sys.executable, "-m", "cxw_tools", "retention"], cwd=REPO, env=env("60"), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        assert patient.poll() is None and old.exists()
    finally:
        _release(holder)
    out, err = patient.communicate(timeout=60)
    assert patient.returncode == 0, err[-2000:]
    assert json.loads(out)["generations_dropped"] == [old.stem] and not old.exists()


def test_a_pipeline_task_starting_during_retention_or_rollback_waits_for_it(tmp_path):
    for what in ("retention", "rollback"):
        holder = _hold(tmp_path, what)
        try:
            quick = subprocess.run([sys.executable, "-c", TASK], cwd=REPO, env=_env(tmp_path, "1"),
                                   capture_output=True, text=True, timeout=120)
        finally:
            _release(holder)
        assert quick.returncode != 0 and "RAN" not in quick.stdout
        assert f"publish: ./cx {what} is running ({what} (pid" in quick.stderr, quick.stderr[-2000:]
