"""Run dbt in a subprocess.

A subprocess, not `dbtRunner` in-process: dbt-duckdb keeps its DuckDB connection open after `invoke` returns, so a
later task in the same process (all tasks of `airflow dags test` share one) could not open the build file again with
another configuration. A subprocess also gives each dbt run a clean memory footprint we can measure.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from .config import DBT_PROJECT_DIR, dbt_target, paths
from .loader import connect_build_db, is_lock_error, lock_wait_s
from .settings import settings

log = logging.getLogger(__name__)


class DbtError(RuntimeError):
    pass


def dbt_env() -> dict[str, str]:
    p = paths()
    env = dict(os.environ)
    env.setdefault("CXW_BUILD_DB", str(p.build_db))
    env.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    # dbt writes logs/ and target/ inside the project unless told otherwise; keep them under CXW_HOME.
    env.setdefault("DBT_LOG_PATH", str(p.home / "dbt" / "logs"))
    env.setdefault("DBT_TARGET_PATH", str(p.home / "dbt" / "target"))
    salt = settings().pii_salt
    if salt:  # PostgreSQL target: the on-run-start hook reads it as the session setting cxw.pii_salt (macros/pii.sql)
        escaped = salt.replace("\\", "\\\\").replace(" ", "\\ ")
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c cxw.pii_salt={escaped}".strip()
    return env


def kpi_window_vars(window) -> list[str]:
    """`--vars` for dbt's KPI window `[start, end)` (dates; None or empty = the extent of the data, as a manual
    `dbt build` without vars). The pipeline passes the window this way, never through the environment."""
    start, end = (list(window) + [None, None])[:2] if window else (None, None)
    return ["--vars", json.dumps({"kpi_window_start": start or "", "kpi_window_end": end or ""})]


def run_dbt(args: list[str], *, target: str | None = None, check: bool = True) -> dict:
    """Run `dbt <args>` and return {returncode, seconds, results: run_results summary, log_tail}."""
    env = dbt_env()
    paths().build_db.parent.mkdir(parents=True, exist_ok=True)
    dbt_bin = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt_bin) if dbt_bin.exists() else "dbt", *args,
           "--project-dir", str(DBT_PROJECT_DIR), "--target", target or dbt_target()]
    t0 = time.perf_counter()
    lock_wait, attempts = 0.0, 0
    deadline = time.monotonic() + lock_wait_s()
    while True:
        attempts += 1
        if (target or dbt_target()) == "duckdb":
            lock_wait += _wait_for_build_db(Path(env["CXW_BUILD_DB"]), deadline)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        # Another process took the file between the wait and dbt's own open (no pool: `dags test`, a manual dbt
        # run): wait again rather than fail, within the same budget. dbt takes the lock when it opens its
        # connection, before any node runs, and `dbt build` is idempotent.
        if proc.returncode == 0 or not is_lock_error(out) or time.monotonic() >= deadline:
            break
        log.info("dbt %s could not lock the build database (held by another process); waiting and retrying",
                 " ".join(args))
        time.sleep(1.0)
    secs = time.perf_counter() - t0
    results = _run_results(Path(env["DBT_TARGET_PATH"]) / "run_results.json")
    report = {"command": " ".join(["dbt", *args]), "returncode": proc.returncode, "seconds": round(secs, 2),
              "lock_wait_s": round(lock_wait, 3), "attempts": attempts, "results": results, "log_tail": out[-6000:]}
    if check and proc.returncode != 0:
        raise DbtError(failure_message(args, proc.returncode, secs, results, out, Path(env["DBT_LOG_PATH"])))
    return report


def failure_message(args: list[str], returncode: int, secs: float, results: dict, out: str, log_dir: Path) -> str:
    """What a failed dbt run says in the task's error (and so in Airflow's log): each failing node with its status
    and, for a failed test, its count of failing rows; for an error, the error's text with its values masked
    (`mask_values`: DuckDB quotes the value it could not cast, a constraint error the key). dbt's full output, which
    can hold compiled SQL and values, stays in dbt's own log under CXW_HOME (erase scrubs it)."""
    from extractors.common.redact import mask_values

    failures = []
    for r in results.get("nodes", []):
        if r["status"] == "fail":
            failures.append(f"{r['unique_id']}: fail ({r.get('failures')} failing row(s))")
        elif r["status"] == "error":
            failures.append(f"{r['unique_id']}: error: {mask_values(r.get('message') or '', 200)}")
    if failures:
        detail = "failing nodes:\n  " + "\n  ".join(failures[:30])
    else:  # dbt stopped before any node (parse / compile / connection error): its error lines, values masked
        lines = [mask_values(line, 200) for line in out.splitlines() if "error" in line.lower()]
        detail = "error lines of its output:\n  " + "\n  ".join(lines[-10:] or ["(none)"])
    return (f"dbt {' '.join(args)} failed (exit {returncode}) after {secs:.1f}s; {detail}\n"
            f"full output (may hold values): {log_dir / 'dbt.log'}")


def _wait_for_build_db(build_db: Path, deadline: float) -> float:
    """Wait until no other process holds the DuckDB build file (open it for writing and close it again), at most
    until ``deadline``; a new file is left to dbt. Returns the seconds waited; raises DuckDB's lock error when the
    budget (CXW_BUILD_DB_LOCK_WAIT_S) runs out."""
    if not build_db.exists():
        return 0.0
    con, waited = connect_build_db(build_db, wait_s=max(deadline - time.monotonic(), 0.0))
    con.close()
    if waited:
        log.info("waited %.1f s for the build database %s before starting dbt", waited, build_db)
    return waited


def _run_results(path: Path) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    nodes = [{"unique_id": r["unique_id"], "status": r["status"], "seconds": round(r.get("execution_time", 0), 3),
              "message": r.get("message"), "failures": r.get("failures")} for r in data.get("results", [])]
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    return {"elapsed": data.get("elapsed_time"), "counts": counts, "nodes": nodes}
