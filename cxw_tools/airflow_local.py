"""The project-local Airflow that `./cx demo`, `./cx run` and `./cx airflow` use: its environment (AIRFLOW_HOME under
CXW_HOME, SQLite metadata unless configured otherwise) and its preparation (metadata DB, the `cxw_build_db` pool,
serialized DAGs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cxw.config import DAGS_DIR, paths


def airflow_env() -> dict[str, str]:
    p = paths()
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = str(p.airflow_home)
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_DIR))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{p.airflow_home / 'airflow.db'}")
    env.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(p.airflow_home / "logs"))
    env.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "120")
    env.setdefault("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "False")
    env.setdefault("CXW_HOME", str(p.home))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _bin(name: str) -> str:
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def airflow(*args: str, env: dict | None = None, check: bool = True, log_file: Path | None = None,
            echo: bool = False) -> subprocess.CompletedProcess:
    # Airflow's CLI with the collector tuned for a one-shot process (cxw_tools/airflow_cli.py): 30-45 % less CPU
    cmd = [sys.executable, "-m", "cxw_tools.airflow_cli", *args]
    env = env or airflow_env()
    if log_file is None:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        return proc
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout
        for line in proc.stdout:
            fh.write(line)
            if echo:
                sys.stdout.write(line)
        rc = proc.wait()
    cp = subprocess.CompletedProcess(cmd, rc)
    if check and rc != 0:
        tail = log_file.read_text()[-4000:]
        raise RuntimeError(f"airflow {' '.join(args)} failed ({rc}); log: {log_file}\n{tail}")
    return cp


def prepare_airflow(env: dict | None = None) -> None:
    """Metadata DB, the writer pool and serialized DAGs: what `airflow dags test` needs first."""
    env = env or airflow_env()
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".migrated"
    commands = [] if stamp.exists() else [["db", "migrate"]]
    commands += [["pools", "set", "cxw_build_db", "1", "one writer of the DuckDB build database"],
                 ["dags", "reserialize"]]
    airflow_commands(commands, env=env)
    stamp.write_text("ok")


# Runs Airflow's own CLI entry point once per command, in one interpreter (cxw_tools/airflow_cli.py, `--then` between
# commands): each `airflow` process spends about 3 CPU-s importing Airflow before its command (tests/README.md), so
# three commands in one process cost about a third.


def airflow_commands(commands: list[list[str]], env: dict | None = None) -> subprocess.CompletedProcess:
    """`airflow <command>` for each of ``commands`` in order, in one Python process (Airflow's CLI `main`, as the
    `airflow` script runs it); stops at the first that fails and raises naming it."""
    env = env or airflow_env()
    from cxw_tools.airflow_cli import THEN

    argv = [arg for i, command in enumerate(commands) for arg in ([THEN] if i else []) + list(command)]
    proc = subprocess.run([sys.executable, "-m", "cxw_tools.airflow_cli", *argv], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        started = [ln[len("cxw: airflow "):] for ln in proc.stderr.splitlines() if ln.startswith("cxw: airflow ")]
        raise RuntimeError(f"airflow {started[-1] if started else commands[0][0]} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc
