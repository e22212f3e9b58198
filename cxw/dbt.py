"""Run dbt in a subprocess.

A subprocess, not `dbtRunner` in-process: dbt-duckdb keeps its DuckDB connection open after `invoke` returns, so a
later task in the same process (all tasks of `airflow dags test` share one) could not open the build file again with
another configuration. A subprocess also gives each dbt run a clean memory footprint we can measure.

dbt's saved parse (`<target>/partial_parse.msgpack`) spares it most of a full parse (about 5 CPU-seconds) when the
project, `--vars`, the profile's rendered values and the env vars the project reads are unchanged. A new CXW_HOME has
none, so every new home parsed the whole project again; with CXW_DBT_PARSE_CACHE_DIR set, a new target directory starts
from the parse an earlier run saved there (any home; keyed by project, target and `--vars`), and dbt runs in the
build database's directory with the file's name as the path, so the profile (and its hash) is the same in every home.
dbt still checks the copied parse itself and parses in full when anything differs: the cache can cost a full parse,
never change a build (issue 16.8).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
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


PARSE_FILE = "partial_parse.msgpack"


def _parse_cache(env: dict[str, str], args: list[str], target: str) -> tuple[Path | None, Path | None]:
    """(saved parse of CXW_DBT_PARSE_CACHE_DIR for this project, target and `--vars`; the directory dbt runs in), or
    (None, None) when the cache is off. Makes ``env``'s CXW_BUILD_DB the file's name (run in its directory)."""
    cache = settings().dbt_parse_cache_dir
    if not cache:
        return None, None
    cwd = None
    if target == "duckdb":
        db = Path(env["CXW_BUILD_DB"]).resolve()
        cwd, env["CXW_BUILD_DB"] = db.parent, db.name
    vars_ = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--vars"]
    key = hashlib.sha256(repr((str(DBT_PROJECT_DIR), target, vars_, env.get("CXW_DUCKDB_MEMORY_LIMIT"),
                               sorted((k, v) for k, v in env.items() if k.startswith("CXW_PG_")))).encode())
    return Path(cache) / key.hexdigest()[:16] / PARSE_FILE, cwd


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def run_dbt(args: list[str], *, target: str | None = None, check: bool = True) -> dict:
    """Run `dbt <args>` and return {returncode, seconds, results: run_results summary, log_tail}."""
    env = dbt_env()
    paths().build_db.parent.mkdir(parents=True, exist_ok=True)
    dbt_bin = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt_bin) if dbt_bin.exists() else "dbt", *args,
           "--project-dir", str(DBT_PROJECT_DIR), "--target", target or dbt_target()]
    build_db = Path(env["CXW_BUILD_DB"])
    saved, cwd = _parse_cache(env, args, target or dbt_target())
    target_parse = Path(env["DBT_TARGET_PATH"]) / PARSE_FILE
    if "--target-path" in args:  # dbt docs generate: its own target directory
        target_parse = Path(args[args.index("--target-path") + 1]) / PARSE_FILE
    if saved is not None and saved.exists() and not target_parse.exists():
        _copy_atomic(saved, target_parse)
    t0 = time.perf_counter()
    lock_wait, attempts = 0.0, 0
    deadline = time.monotonic() + lock_wait_s()
    while True:
        attempts += 1
        if (target or dbt_target()) == "duckdb":
            lock_wait += _wait_for_build_db(build_db, deadline)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
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
    if saved is not None and proc.returncode == 0 and target_parse.exists():
        try:
            _copy_atomic(target_parse, saved)
        except OSError as exc:  # a cache that cannot be written costs the next home a parse, nothing else
            log.warning("could not save dbt's parse to %s: %s", saved, exc)
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
