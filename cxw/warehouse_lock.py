"""Erasure versus pipeline runs: one advisory lock on the data directory (issue 15 point 6).

`./cx erase` rewrites raw files, the build database, every kept generation and the alert drops in many steps, each
opening the build database on its own. DuckDB's file lock (and the `cxw_build_db` pool) only keeps single
connections apart: a pipeline task could open the build database between two of erase's steps — a load appending
rows erase already removed from raw, a publish copying the build database before erase rebuilt it. So:

* every pipeline task (extract, load, the gates, dbt_build, publish, export_alerts, summarize) holds the lock
  **shared** while it runs (`pipeline_task`): tasks never wait for each other here (DuckDB's lock and the pool do
  that), only for an erasure;
* `./cx erase` holds it **exclusively** from before it reads anything until its audit record is written (`erasure`);
* `./cx retention` (drops raw loads and generations) and `./cx rollback` (switches what BI reads) hold it
  **exclusively** too (`maintenance`): a load or a publish must not run while a load directory or a generation is
  being removed or the published file switched, and neither may run in the middle of an erasure.

Either side waits for the other up to `CXW_BUILD_DB_LOCK_WAIT_S` (default 600 s, the build database's lock budget)
and then fails with a message that says who holds it and what to do; an erase that gives up has changed nothing. The
lock is `flock(2)` on `<warehouse>/.erase.lock` (released by the kernel when its holder dies, so a killed erase never
blocks the pipeline); who holds it is written next to it for the messages (`.erase.lock.d/`), never what is erased.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .config import paths

log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """The lock was not free within CXW_BUILD_DB_LOCK_WAIT_S."""


def lock_path() -> Path:
    return paths().build_db.parent / ".erase.lock"


def _holders_dir() -> Path:
    return lock_path().with_name(".erase.lock.d")


def _wait_s(wait_s: float | None) -> float:
    from .loader import lock_wait_s

    return lock_wait_s() if wait_s is None else float(wait_s)


def _holders() -> list[dict]:
    out = []
    for f in sorted(_holders_dir().glob("*.json")) if _holders_dir().exists() else []:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(int(rec.get("pid", 0)), 0)
        except (OSError, ValueError):
            continue  # a holder that died without cleaning up (its flock went with it)
        out.append(rec)
    return out


def _describe(holders: list[dict], kind: str) -> str:
    """The holders of `kind`: 'task' (pipeline tasks), 'exclusive' (erase, retention, rollback) or 'any'."""
    names = [f"{h.get('what')} (pid {h.get('pid')}, since {h.get('since')})" for h in holders
             if kind == "any" or (h.get("kind") == "task") == (kind == "task")]
    return ", ".join(names) if names else "another process"


@contextmanager
def _locked(mode: int, kind: str, what: str, wait_s: float | None, busy_message):
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    budget = _wait_s(wait_s)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    t0 = time.monotonic()
    logged = False
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - t0
                if waited >= budget:
                    raise WarehouseBusy(busy_message(_holders(), waited)) from None
                if not logged:
                    log.info("%s waits for %s (up to %.0f s, CXW_BUILD_DB_LOCK_WAIT_S)", what,
                             _describe(_holders(), "exclusive" if kind == "task" else "any"), budget)
                    logged = True
                time.sleep(min(0.2, max(budget - waited, 0.01)))
        waited = round(time.monotonic() - t0, 3)
        if waited > 0.5:
            log.info("%s waited %.1f s for the warehouse lock", what, waited)
        _holders_dir().mkdir(parents=True, exist_ok=True)
        me = _holders_dir() / f"{kind}-{os.getpid()}-{time.monotonic_ns()}.json"
        me.write_text(json.dumps({"kind": kind, "what": what, "pid": os.getpid(),
                                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        try:
            yield waited
        finally:
            me.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the flock


def pipeline_task(what: str, wait_s: float | None = None):
    """Shared hold for one pipeline task: waits while an erasure (or `./cx retention` / `./cx rollback`) runs."""
    def busy(holders, waited):
        ours = [h for h in holders if h.get("kind") != "task"]
        running = ("an erasure is running" if not ours or any(h.get("kind") == "erase" for h in ours)
                   else f"./cx {ours[0].get('what')} is running")
        return (f"{what}: {running} ({_describe(holders, 'exclusive')}); waited {waited:.0f} s "
                f"(CXW_BUILD_DB_LOCK_WAIT_S). The task changed nothing; it runs when retried after that has "
                "finished (Airflow retries it), or raise CXW_BUILD_DB_LOCK_WAIT_S.")
    return _locked(fcntl.LOCK_SH, "task", what, wait_s, busy)


def erasure(wait_s: float | None = None):
    """Exclusive hold for `./cx erase`: waits until no pipeline task runs."""
    def busy(holders, waited):
        return (f"erase: the warehouse is in use ({_describe(holders, 'any')}); waited "
                f"{waited:.0f} s (CXW_BUILD_DB_LOCK_WAIT_S). Nothing was erased or changed. Run erase again when "
                "the DAG run has finished (or pause the DAG first), or raise CXW_BUILD_DB_LOCK_WAIT_S.")
    return _locked(fcntl.LOCK_EX, "erase", "erase", wait_s, busy)


def maintenance(what: str, wait_s: float | None = None):
    """Exclusive hold for `./cx retention` and `./cx rollback` (`what`): waits until no pipeline task (and no
    erasure) runs; WarehouseBusy after CXW_BUILD_DB_LOCK_WAIT_S, having changed nothing."""
    def busy(holders, waited):
        return (f"{what}: the warehouse is in use ({_describe(holders, 'any')}); waited {waited:.0f} s "
                f"(CXW_BUILD_DB_LOCK_WAIT_S). Nothing was changed. Run `./cx {what}` again when the DAG run (or the "
                "erasure) has finished, or raise CXW_BUILD_DB_LOCK_WAIT_S.")
    return _locked(fcntl.LOCK_EX, what, what, wait_s, busy)
