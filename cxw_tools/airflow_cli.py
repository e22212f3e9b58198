"""`python -m cxw_tools.airflow_cli <command> ...`: Airflow's own CLI (`airflow.__main__.main`, what the `airflow`
script runs), one command or several (`--then` between them), with the garbage collector tuned for a one-shot
process that imports a large heap.

Why (issue 16.8, tests/README.md "Before the first task"): an Airflow CLI process imports ~1,400 modules (~670,000
tracked objects). With CPython's default thresholds (700, 10, 10) every growth of the heap by a quarter triggers a
full collection that walks all of it: 9 of them cost 1.5 of the 5.5 CPU-s of a 3-task `airflow dags test`, and the
full collection at interpreter exit another ~1.5 CPU-s, measured 2026-12-07. Here the young generation holds 50,000
allocations before a collection (cycles are still collected, in fewer passes), and the process ends without the
interpreter's teardown (`finish`): non-daemon threads are joined and the atexit handlers run (Airflow's engine
disposal, logging shutdown), then `os._exit`. The teardown would walk the whole heap once more, and freezing the heap
instead (tried first) made DuckDB's bindings, which a `dags test` task loads, print a nanobind leak report at exit. Only the one-shot commands our tools start use this (`./cx demo`'s preparation and
`airflow dags test`, the tests' DAG runs); the services of `./cx up` and a deployment run Airflow unchanged.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

GC_THRESHOLDS = (50_000, 20, 10)
THEN = "--then"


def split_commands(argv: list[str]) -> list[list[str]]:
    """``["pools", "set", ..., "--then", "dags", "reserialize"]`` → one argv per command."""
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == THEN:
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def main(argv: list[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLDS)
    from airflow.__main__ import main as airflow_main

    code: int | str | None = 0
    try:
        for command in split_commands(list(sys.argv[1:] if argv is None else argv)):
            print("cxw: airflow " + " ".join(command), file=sys.stderr, flush=True)
            sys.argv = ["airflow", *command]
            code = airflow_main()
            if code:
                break
    except SystemExit as exc:  # Airflow's commands end with sys.exit / SystemExit("message") on failure
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr, flush=True)
        return 1
    return int(code or 0)


def finish(code: int) -> NoReturn:
    """End the process like the interpreter's exit up to its teardown: wait for non-daemon threads, run the atexit
    handlers, flush the standard streams, then `os._exit(code)` (no module teardown, no last full collection)."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    finish(main())
