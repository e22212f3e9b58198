"""`./cx up` / `./cx down` / `./cx status`: the pipeline under Airflow's own scheduler on this machine, no Docker.

`./cx up` starts the four Airflow 3 services - api-server, scheduler (LocalExecutor), dag-processor, triggerer - as
background processes on a PostgreSQL metadata database (CXW_AIRFLOW_DB_URL, default the database `cxw_airflow` on
the local PostgreSQL, created when missing). Their AIRFLOW_HOME is `$CXW_HOME/airflow-up`, apart from the SQLite
home of `./cx run` / `./cx demo`; it holds `pids/<service>.pid`, `logs/<service>.log` and `up.json` (URL, ports,
mode). Before starting them it migrates the metadata database, creates the `cxw_build_db` pool, serializes and
unpauses `cx_pipeline`; then it waits until the api-server's /api/v2/monitor/health reports the metadata database,
scheduler, dag-processor and triggerer healthy, and prints the URL and where the admin password is. Settings come
from the environment, then `.env` / `--env-file` (as `./cx run`); the services get them in their environment.

`./cx up --demo` first generates the demo company with its history ending today (00:00 UTC) and serves its vendor
APIs on loopback (a fifth background process, `demo-server`), so the scheduler's first run - the latest complete
day - has a company to read.

Idempotent: when every service of the home is running, `./cx up` says so and starts nothing; when only some are
(one crashed), it stops those and starts all again. `./cx down` sends SIGTERM to each service's process group
and to every process below them outside those groups (task processes run in process groups of their own) or with
this AIRFLOW_HOME in its environment, SIGKILL to what is left after `--timeout` seconds, and removes the pid files.

`./cx up --executor celery [--workers N] [--worker-concurrency C]` (or CXW_AIRFLOW_EXECUTOR=celery,
CXW_AIRFLOW_CELERY_WORKERS) runs the scheduler with the CeleryExecutor instead: Redis as the broker
(CXW_AIRFLOW_BROKER_URL, default redis://127.0.0.1:6379/0, checked before anything starts), the metadata database as
Celery's result backend (`db+<CXW_AIRFLOW_DB_URL>`), and N (default 2) `airflow celery worker` processes beside the
four services, `celery-worker-<i>` each (pid file, log, Celery hostname `celery-worker-<i>@<host>`, a log-server port
of its own). `./cx down` stops them with the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cxw.config import REPO_ROOT, paths

DAG_ID = "cx_pipeline"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
DEMO_SERVER = "demo-server"
DEFAULT_DB_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/cxw_airflow"
DEFAULT_PORT = 8080
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
WORKER = "celery-worker"
HEALTH = "/api/v2/monitor/health"


# --- the home -------------------------------------------------------------------------------------------------------

def up_home() -> Path:
    return paths().home / "airflow-up"


def _pid_file(home: Path, name: str) -> Path:
    return home / "pids" / f"{name}.pid"


def _log_file(home: Path, name: str) -> Path:
    return home / "logs" / f"{name}.log"


def _state_file(home: Path) -> Path:
    return home / "up.json"


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]; None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """A running (not zombie) process."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks after boot): with the pid, it names one process for good (a pid is
    reused, the pair is not)."""
    st = _stat(pid)
    return st[19] if st else None


def _cmdline(pid: int, limit: int | None = 80) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:limit]
    except OSError:
        return "?"


def _read_pid(f: Path) -> tuple[int, str | None] | None:
    try:
        parts = f.read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def _names(home: Path) -> list[str]:
    """The services, the demo server and the Celery workers of ``home`` that have a pid file."""
    return sorted(f.stem for f in (home / "pids").glob("*.pid"))


def running(home: Path) -> dict[str, int]:
    """{service: pid} of the services of ``home`` whose pid file names a live process: the same pid AND start time
    (a pid file left by a crash, whose pid was reused by another program, names nothing)."""
    out = {}
    for name in _names(home):
        rec = _read_pid(_pid_file(home, name))
        if rec and _alive(rec[0]) and _started(rec[0]) == rec[1]:
            out[name] = rec[0]
    return out


def _ours(pid: int, home: Path) -> bool:
    """The process was started with AIRFLOW_HOME=<home> in its environment (a process that rewrites its title with
    setproctitle, as Airflow's services do, no longer shows its environment: found through its parent instead)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"AIRFLOW_HOME={home}".encode() in environ.split(b"\0")


def descendants(pids) -> set[int]:
    """``pids`` and every live process below them (children, grandchildren, ...), whatever their process group."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))) and st[0] != "Z":
            children.setdefault(int(st[1]), []).append(int(d.name))
    out, todo = set(), [p for p in pids if _alive(p)]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children.get(p, []))
    return out


def processes_of(home: Path) -> set[int]:
    """Every live process (other than this one) of ``home``: the running services and everything below them, and
    any process with AIRFLOW_HOME=<home> in its environment (one whose parent has ended)."""
    me = os.getpid()
    found = {int(d.name) for d in Path("/proc").iterdir()
             if d.name.isdigit() and int(d.name) != me and _alive(int(d.name)) and _ours(int(d.name), home)}
    return descendants(set(running(home).values()) | found) - {me}


# --- settings -------------------------------------------------------------------------------------------------------

def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sk:
        sk.bind((host, 0))
        return sk.getsockname()[1]


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sk:
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sk.bind((host, port))
        except OSError:
            return False
    return True


def db_url() -> str:
    return os.environ.get("CXW_AIRFLOW_DB_URL", "").strip() or DEFAULT_DB_URL


def executor() -> str:
    return os.environ.get("CXW_AIRFLOW_EXECUTOR", "").strip().lower() or "local"


def broker_url() -> str:
    return os.environ.get("CXW_AIRFLOW_BROKER_URL", "").strip() or DEFAULT_BROKER_URL


def worker_names(n: int) -> list[str]:
    return [f"{WORKER}-{i}" for i in range(1, n + 1)]


def check_broker(url: str) -> None:
    """The Redis broker answers a PING (before anything starts: a worker without its broker retries forever)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5).ping()
    except Exception as exc:
        raise RuntimeError(f"cannot reach the Celery broker {_shown_broker(url)} (CXW_AIRFLOW_BROKER_URL): "
                           f"{type(exc).__name__}: {exc}") from None


def _shown_broker(url: str) -> str:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return url.replace(f":{u.password}@", ":***@") if u.password else url


def _shown(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database of ``url`` when it does not exist (connecting to the server's `postgres`
    database); True when it was created. Other databases are left to their owner."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    if not u.drivername.startswith("postgresql") or not u.database:
        return False
    eng = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as con:
            if con.execute(sa.text("select 1 from pg_database where datname = :d"), {"d": u.database}).first():
                return False
            con.execute(sa.text(f'create database "{u.database.replace(chr(34), chr(34) * 2)}"'))
            return True
    finally:
        eng.dispose()


def _secrets(home: Path) -> dict[str, str]:
    """The JWT secret (api-server and scheduler must share it) and the Fernet key (connections and variables stored
    in the metadata DB are encrypted with it): generated once, kept in `<home>/secrets.json` (0600)."""
    f = home / "secrets.json"
    if f.exists():
        return json.loads(f.read_text())
    from cryptography.fernet import Fernet

    values = {"jwt_secret": secrets.token_hex(32), "fernet_key": Fernet.generate_key().decode()}
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


def service_env(home: Path, port: int, host: str, url: str, executor: str = "local",
                broker: str = DEFAULT_BROKER_URL) -> tuple[dict, dict]:
    """The environment of the services (the caller's settings + Airflow's), and what `up.json` records."""
    from cxw_tools.airflow_local import airflow_env

    saved = os.environ.get("AIRFLOW_HOME")
    os.environ["AIRFLOW_HOME"] = str(home)
    try:
        env = airflow_env()
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW_HOME", None)
        else:
            os.environ["AIRFLOW_HOME"] = saved
    sec = _secrets(home)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{local}:{port}"
    log_ports = {"worker": int(env.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT") or _free_port()),
                 "triggerer": int(env.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT") or _free_port())}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__API__BASE_URL": f"{base}/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "tasks"),
        # not the machine-wide defaults 8793 / 8794: another Airflow on this machine may hold them
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports["worker"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports["triggerer"]),
    })
    env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", sec["jwt_secret"])
    env.setdefault("AIRFLOW__CORE__FERNET_KEY", sec["fernet_key"])
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "8")
    # a task's calls to the execution API: Airflow's 5 s fail a task whose api-server is busy on a loaded machine
    env.setdefault("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "30")
    state = {"url": base, "host": host, "port": port, "log_server_ports": log_ports, "executor": executor}
    if executor == "celery":
        env["AIRFLOW__CELERY__BROKER_URL"] = broker
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + url
        state["broker"] = _shown_broker(broker)
    return env, state


def passwords_file(env: dict) -> Path:
    return Path(env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
                or Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated")


# --- processes ------------------------------------------------------------------------------------------------------

def _spawn(home: Path, name: str, cmd: list[str], env: dict) -> int:
    """Start ``cmd`` in a session (process group) of its own, detached from this terminal; pid file and log."""
    log = _log_file(home, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(home, name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh, open(os.devnull, "rb") as devnull:
        fh.write(f"\n--- cx up: {' '.join(cmd[1:])} at {datetime.now(timezone.utc).isoformat()}\n".encode())
        fh.flush()
        proc = subprocess.Popen(cmd, env=env, stdin=devnull, stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO_ROOT, start_new_session=True)
    _pid_file(home, name).write_text(f"{proc.pid} {_started(proc.pid)}\n")
    return proc.pid


def _health(base: str, timeout: float = 15.0) -> dict | None:
    """The api-server's health answer; None when it does not answer (in time). Never through a proxy: it is ours."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base + HEALTH, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def healthy(h: dict | None) -> bool:
    return bool(h) and all((h.get(k) or {}).get("status") == "healthy"
                           for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


def _tail(f: Path, n: int = 3000) -> str:
    try:
        return f.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop(home: Path, timeout: float = 60.0, out=None) -> list[str]:
    """SIGTERM to each service's process group and to every process below them outside those groups (task
    processes run in process groups of their own: the task supervisor's setpgid) or with this AIRFLOW_HOME in its
    environment; SIGKILL to what is left of them after ``timeout`` s; removes the pid files. Returns the names of the services that were
    running."""
    out = out or sys.stdout
    live = running(home)
    tree = {p: _started(p) for p in processes_of(home)}
    for name, pid in live.items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    groups = {_stat(p)[2] for p in live.values() if _stat(p)}
    for p in tree:  # and each process outside the services' groups (task processes): a graceful end for all
        if (st := _stat(p)) and st[2] not in groups:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)

    def left() -> list[int]:
        return [p for p, t in tree.items() if _alive(p) and _started(p) == t]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and left():
        for p in descendants(left()):  # a worker started a task meanwhile: stop it with the rest
            tree.setdefault(p, _started(p))
        time.sleep(0.3)
    rest = left()
    if rest:
        print(f"cx down: {len(rest)} process(es) still running {timeout:.0f}s after SIGTERM: SIGKILL ("
              + ", ".join(f"{p} {_cmdline(p)}" for p in rest) + ")", file=out, flush=True)
        for name, pid in live.items():
            if pid in rest:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        for p in rest:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    for f in (home / "pids").glob("*.pid"):
        f.unlink(missing_ok=True)
    for f in (home / "run").glob("*.pid"):  # Airflow's own pid files of the Celery workers (removed at their exit)
        f.unlink(missing_ok=True)
    return list(live)


# --- the demo -------------------------------------------------------------------------------------------------------

def _demo_sources(home: Path, env: dict, scale: str, seed: int, out) -> dict[str, str]:
    """Generate (cached) the demo company with its history ending today 00:00 UTC, serve it in the background
    (`demo-server`), return the settings that point the extractors at it."""
    from demo_company.config import DEFAULT_DAYS

    from cxw_tools.demo import ensure_demo, source_env

    today = datetime.now(timezone.utc).date()
    start = today - timedelta(days=DEFAULT_DAYS)
    data_dir, manifest = ensure_demo(scale, seed, shape={"start": start.isoformat(), "days": DEFAULT_DAYS})
    ready = home / "demo-server.json"
    ready.unlink(missing_ok=True)
    pid = _spawn(home, DEMO_SERVER, [sys.executable, "-m", "demo_company.server", "--data", str(data_dir),
                                      "--port", "0", "--ready-file", str(ready)], env)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if not _alive(pid):
            raise RuntimeError(f"the demo server exited; log: {_log_file(home, DEMO_SERVER)}\n"
                               f"{_tail(_log_file(home, DEMO_SERVER))}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo server did not start in 120 s; log: {_log_file(home, DEMO_SERVER)}")
        time.sleep(0.1)
    info = json.loads(ready.read_text())
    print(f"cx up: demo company {scale} (seed {seed}, history {start} … {today}) served at {info['base_url']}",
          file=out, flush=True)
    return source_env(data_dir, manifest, info["base_url"])


# --- commands -------------------------------------------------------------------------------------------------------

def _print_access(state: dict, out) -> None:
    home = Path(state["home"])
    pw = Path(state.get("passwords_file") or home / "simple_auth_manager_passwords.json.generated")
    print(f"cx up: Airflow UI and API at {state['url']}/", file=out)
    print(f"cx up: log in as admin; its password is generated by Airflow into {pw} (read it there: it is never "
          f"printed)", file=out)
    print(f"cx up: logs and pid files in {home}/logs and {home}/pids; stop with `./cx down`", file=out, flush=True)


def up(env_file: Path | None = None, demo: bool = False, scale: str = "XS", seed: int = 42, port: int | None = None,
       host: str | None = None, timeout: float = 600.0, executor_name: str | None = None, workers: int | None = None,
       worker_concurrency: int | None = None, out=None) -> int:
    from cxw_tools.airflow_local import _bin, airflow, prepare_airflow
    from cxw_tools.run import preflight, read_env_file

    out = out or sys.stdout
    if (rc := read_env_file("cx up", env_file, out)) is not None:
        return rc
    home = up_home()
    executor_name = (executor_name or executor()).lower()
    if executor_name not in EXECUTORS:
        print(f"cx up: unknown executor {executor_name!r} (CXW_AIRFLOW_EXECUTOR / --executor: "
              f"{' or '.join(EXECUTORS)})", file=sys.stderr)
        return 2
    if workers is None:
        workers = int(os.environ.get("CXW_AIRFLOW_CELERY_WORKERS", "").strip() or 2)
    wanted = [*SERVICES, *(worker_names(workers) if executor_name == "celery" else [])]
    live = running(home)
    previous = json.loads(_state_file(home).read_text()).get("executor", "local") if _state_file(home).exists() \
        else None
    if live and set(wanted) <= set(live) and previous == executor_name:
        state = json.loads(_state_file(home).read_text()) if _state_file(home).exists() else {"url": "?",
                                                                                             "home": str(home)}
        print(f"cx up: already running ({', '.join(f'{n} pid {p}' for n, p in live.items())}); nothing started",
              file=out)
        _print_access(state, out)
        return 0
    if live:
        what = "only" if previous in (None, executor_name) else f"the {previous} deployment's"
        print(f"cx up: {what} {', '.join(sorted(live))} of {home} running (asked for: {executor_name}): stopping "
              f"them, then starting all", file=out, flush=True)
        stop(home, out=out)
    home.mkdir(parents=True, exist_ok=True)

    host = host or os.environ.get("CXW_AIRFLOW_HOST", "").strip() or "127.0.0.1"
    configured = port if port is not None else (int(os.environ["CXW_AIRFLOW_PORT"])
                                                if os.environ.get("CXW_AIRFLOW_PORT", "").strip() else None)
    if configured == 0:
        port = _free_port(host)
    elif configured is not None:
        if not _port_free(host, configured):
            print(f"cx up: port {configured} on {host} is in use (set CXW_AIRFLOW_PORT or --port; 0 = any free "
                  f"port)", file=sys.stderr)
            return 2
        port = configured
    else:
        port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else _free_port(host)
        if port != DEFAULT_PORT:
            print(f"cx up: port {DEFAULT_PORT} is in use; the api-server takes the free port {port}", file=out)

    url = db_url()
    env, state = service_env(home, port, host, url, executor_name, broker_url())
    state.update({"home": str(home), "db": _shown(url), "mode": "demo" if demo else "sources",
                  "passwords_file": str(passwords_file(env)),
                  "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    t0 = time.monotonic()
    try:
        if executor_name == "celery":  # first: a worker without its broker would retry forever
            check_broker(broker_url())
        if demo:
            env.update(_demo_sources(home, env, scale, seed, out))
        problems = preflight(env)  # before anything is created: an unconfigured `./cx up` leaves nothing behind
        if problems:
            print("cx up: not configured - nothing was started:", file=sys.stderr)
            for pr in problems:
                print(f"  {pr}", file=sys.stderr)
            stop(home, out=out)
            return 1
        try:
            if ensure_database(url):
                print(f"cx up: created the metadata database {_shown(url)}", file=out, flush=True)
        except Exception as exc:
            raise RuntimeError(f"cannot reach the metadata database {_shown(url)} (CXW_AIRFLOW_DB_URL): "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        print(f"cx up: preparing the metadata database {_shown(url)} (migrate, pool cxw_build_db, DAG "
              f"serialization)", file=out, flush=True)
        _migrated_for(home, url)
        prepare_airflow(env)
        (home / ".migrated-db").write_text(_url_key(url))
        # the api-server first: task workers report to its execution API, so the scheduler starts once it answers
        print(f"cx up: starting the api-server on {host}:{port}", file=out, flush=True)
        pids = state["pids"] = {}
        pids["api-server"] = _spawn(home, "api-server", [_bin("airflow"), "api-server", "-H", host, "-p", str(port)],
                                    env)
        _state_file(home).write_text(json.dumps(state, indent=1))
        deadline = time.monotonic() + timeout
        _wait(lambda h: (h.get("metadatabase") or {}).get("status") == "healthy", state, home, deadline, timeout)
        others = [n for n in SERVICES if n != "api-server"]
        print(f"cx up: starting {', '.join(others)} ({EXECUTORS[executor_name]})", file=out, flush=True)
        for name in others:
            pids[name] = _spawn(home, name, [_bin("airflow"), name], env)
        if executor_name == "celery":
            _start_workers(home, env, state, workers, worker_concurrency, out)
        _state_file(home).write_text(json.dumps(state, indent=1))
        _wait(healthy, state, home, deadline, timeout)
        if executor_name == "celery":
            _wait_workers(home, state, deadline, timeout)
        airflow("dags", "unpause", DAG_ID, env=env)
        print(f"cx up: {DAG_ID} unpaused: the scheduler runs it daily (the latest complete day first)", file=out,
              flush=True)
    except Exception as exc:
        print(f"cx up: FAILED: {exc}", file=sys.stderr)
        stop(home, out=out)
        return 1
    print(f"cx up: healthy in {time.monotonic() - t0:.0f}s (metadata database, scheduler, dag-processor, "
          f"triggerer{', ' + str(workers) + ' Celery workers ready' if executor_name == 'celery' else ''})", file=out)
    _print_access(state, out)
    return 0


def _start_workers(home: Path, env: dict, state: dict, n: int, concurrency: int | None, out) -> None:
    """N `airflow celery worker` processes: each its Celery hostname, Airflow pid file and log-server port."""
    from cxw_tools.airflow_local import _bin

    (home / "run").mkdir(parents=True, exist_ok=True)
    state["workers"] = {}
    for name in worker_names(n):
        port = _free_port()
        cmd = [_bin("airflow"), "celery", "worker", "--celery-hostname", f"{name}@{socket.gethostname()}",
               "--pid", str(home / "run" / f"{name}.pid"), *(["--concurrency", str(concurrency)] if concurrency else [])]
        state["pids"][name] = _spawn(home, name, cmd, {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)})
        state["workers"][name] = {"hostname": f"{name}@{socket.gethostname()}", "log_server_port": port}
    print(f"cx up: started {n} Celery workers ({', '.join(state['workers'])}; broker {state['broker']}"
          + (f", concurrency {concurrency} each" if concurrency else "") + ")", file=out, flush=True)


def _wait_workers(home: Path, state: dict, deadline: float, timeout: float) -> None:
    """Until each Celery worker's log says it is ready (connected to the broker, consuming its queue)."""
    waiting = dict(state["workers"])
    while waiting:
        for name, w in list(waiting.items()):
            if f"{w['hostname']} ready." in _tail(_log_file(home, name), 20000):
                waiting.pop(name)
        dead = [n for n, pid in state["pids"].items() if not _alive(pid)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; last lines of {_log_file(home, dead[0])}:\n"
                               f"{_tail(_log_file(home, dead[0]))}")
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"Celery workers {', '.join(waiting)} not ready after {timeout:.0f}s; logs in "
                               f"{home / 'logs'}")
        if waiting:
            time.sleep(1)


def _wait(ok, state: dict, home: Path, deadline: float, timeout: float) -> None:
    """Until the api-server's health answer satisfies ``ok``; fails when a started service exits or at
    ``deadline``."""
    while True:
        h = _health(state["url"])
        if h and ok(h):
            return
        dead = [n for n, pid in state["pids"].items() if not _alive(pid)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; last lines of {_log_file(home, dead[0])}:\n"
                               f"{_tail(_log_file(home, dead[0]))}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not healthy after {timeout:.0f}s ({state['url']}{HEALTH}: {h}); logs in "
                               f"{home / 'logs'}")
        time.sleep(1)


def _url_key(url: str) -> str:
    import hashlib

    return hashlib.sha256(url.encode()).hexdigest()


def _migrated_for(home: Path, url: str) -> None:
    """`prepare_airflow` migrates once per home (its `.migrated` stamp): forget the stamp when the metadata database
    is another one than the one migrated."""
    key = home / ".migrated-db"
    if not key.exists() or key.read_text() != _url_key(url):
        (home / ".migrated").unlink(missing_ok=True)


def down(timeout: float = 60.0, out=None) -> int:
    out = out or sys.stdout
    home = up_home()
    stopped = stop(home, timeout=timeout, out=out)
    print(f"cx down: stopped {', '.join(stopped)}" if stopped else f"cx down: nothing was running in {home}", file=out)
    return 0


def status(out=None) -> int:
    """Each service's pid (or `not running`) and the api-server's health; exit 0 when every service is up."""
    out = out or sys.stdout
    home = up_home()
    live = running(home)
    state = json.loads(_state_file(home).read_text()) if _state_file(home).exists() else {}
    for name in (*SERVICES, DEMO_SERVER, *state.get("workers", {})):
        if name == DEMO_SERVER and state.get("mode") != "demo":
            continue
        print(f"  {name:<14} {'pid ' + str(live[name]) if name in live else 'not running'}", file=out)
    if live and state.get("url"):
        h = _health(state["url"])
        print(f"  health         {state['url']}{HEALTH}: "
              + (", ".join(f"{k} {(v or {}).get('status')}" for k, v in h.items()) if h else "no answer"), file=out)
    return 0 if {*SERVICES, *state.get("workers", {})} <= set(live) else 1


def add_parsers(sub) -> None:
    """`up`, `down`, `status` on the `python -m cxw_tools` command line."""
    import argparse

    u = sub.add_parser("up", help="start Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor, "
                                  "PostgreSQL metadata DB) in the background, with the pool and cx_pipeline unpaused",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("--env-file", type=Path, default=None, metavar="PATH",
                   help="KEY=VALUE settings file (default: <repo>/.env when it exists); the environment wins")
    u.add_argument("--demo", action="store_true", help="generate and serve the demo company as the sources")
    u.add_argument("--scale", default="XS", choices=["XS", "S", "M", "L"], help="demo company scale (--demo)")
    u.add_argument("--seed", type=int, default=42, help="demo company seed (--demo)")
    u.add_argument("--port", type=int, default=None,
                   help=f"api-server port (default CXW_AIRFLOW_PORT, else {DEFAULT_PORT} or a free one; 0 = free)")
    u.add_argument("--host", default=None, help="api-server address (default CXW_AIRFLOW_HOST, else 127.0.0.1)")
    u.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the services to be healthy")
    u.add_argument("--executor", choices=sorted(EXECUTORS), default=None,
                   help="local (LocalExecutor) or celery (Redis broker, `--workers` Celery workers); default "
                        "CXW_AIRFLOW_EXECUTOR, else local")
    u.add_argument("--workers", type=int, default=None,
                   help="Celery workers (--executor celery; default CXW_AIRFLOW_CELERY_WORKERS, else 2)")
    u.add_argument("--worker-concurrency", type=int, default=None,
                   help="tasks each Celery worker runs at once (default Airflow's [celery] worker_concurrency)")
    d = sub.add_parser("down", help="stop what `up` started (SIGTERM, SIGKILL after --timeout)")
    d.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("status", help="the services `up` started and their health")


def run_from_args(args) -> int:
    if args.cmd == "up":
        return up(env_file=args.env_file, demo=args.demo, scale=args.scale, seed=args.seed, port=args.port,
                  host=args.host, timeout=args.timeout, executor_name=args.executor, workers=args.workers,
                  worker_concurrency=args.worker_concurrency)
    if args.cmd == "down":
        return down(timeout=args.timeout)
    return status()
