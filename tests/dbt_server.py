"""One long-lived `dbt` process per test process (tests/dbt_cli.py, issue 16.8): dbt's own Python entry point
(`dbtRunner`, what the `dbt` command calls) run once per request, so each call of a test no longer pays Python's and
dbt's start-up (importing dbt, its adapters and their dependencies: about half of a call on a saved parse).

Protocol: one JSON request per line on stdin, {"args": [...], "env": {...}, "cwd": "..."}; the process runs dbt with
exactly that environment (os.environ replaced) in that directory, its console output captured, and answers with one
line `RESULT_PREFIX + JSON` {"returncode", "stdout", "stderr"} on the stdout it started with. The exit codes are the
`dbt` command's: 0 success, 1 a failed node or handled error, 2 an unhandled exception. After every call the DuckDB
database dbt-duckdb keeps open between its connections is closed, so the test (another process) can open the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

RESULT_PREFIX = "@@dbt-result@@ "


def _close_duckdb() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - the project's venv has dbt-duckdb
        return
    env, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    DuckDBConnectionManager._LOGGED_MESSAGES.clear()  # "once per dbt execution" warnings
    if env is not None:
        env.close()


def run_one(request: dict) -> dict:
    from dbt.cli.main import dbtRunner

    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    code = 2
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            res = dbtRunner().invoke(list(request["args"]))
        # the `dbt` command: ResultExit (failed nodes, no exception) exits 1, ExceptionExit and usage errors 2
        code = 0 if res.success else (1 if res.exception is None else 2)
        if res.exception is not None:
            err.write(f"{type(res.exception).__name__}: {res.exception}\n")
    except BaseException:  # noqa: BLE001 - reported to the caller as the dbt command would (exit 2)
        err.write(traceback.format_exc())
    finally:
        try:
            _close_duckdb()
        except Exception:  # noqa: BLE001
            err.write(traceback.format_exc())
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    reply = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        result = run_one(json.loads(line))
        reply.write(RESULT_PREFIX + json.dumps(result) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
