"""`./cx run`: the pipeline on the configured sources, one data interval (a day) at a time.

Configuration: the environment, a `.env` file (`KEY=VALUE` lines, read as text - no shell evaluation; a variable
already in the environment wins over the file) and Airflow connections. The metadata DB and the `cxw_build_db` pool
are prepared as for the demo (`cxw_tools.airflow_local.prepare_airflow`, which `./cx demo` calls too); the DAG runs with
`airflow dags test` in a subprocess whose log goes to a file, while this process polls the metadata DB and prints
one line per task state change; the run summary (cxw/summary.py) ends the output.

Dates: `--date D` processes the data interval of day D, [D 00:00, D+1 00:00) UTC. The DAG's timetable is a daily
CronDataIntervalTimetable, whose runs are named after the END of their interval: the run for day D has Airflow
logical date D+1 00:00 UTC (`airflow dags test cx_pipeline D+1`). The default is the latest complete day (yesterday,
UTC); `--since D` runs each day from D to the latest complete day, in order, and stops at the first failed day.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from cxw.config import REPO_ROOT

DAG_ID = "cx_pipeline"
POLL_S = 0.5
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- .env ---------------------------------------------------------------------------------------------------------

def parse_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines; blank lines and `#` comments skipped; an optional `export ` prefix; a value in matching
    single or double quotes is taken literally without them. Nothing is expanded or evaluated. A malformed line is an
    error naming the file and line number (never the line's text: it may hold a secret)."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.match(key):
            raise ValueError(f"{path}:{n}: not a KEY=VALUE line")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def apply_env_file(path: Path, environ=None) -> tuple[list[str], list[str]]:
    """Set the file's variables that the environment does not set already. Returns (names set, names kept from the
    environment) - names only, values are never printed."""
    environ = os.environ if environ is None else environ
    values = parse_env_file(path)
    kept = sorted(k for k in values if k in environ)
    added = sorted(k for k in values if k not in environ)
    for k in added:
        environ[k] = values[k]
    return added, kept


# --- dates ----------------------------------------------------------------------------------------------------------

def latest_complete_day(now: datetime | None = None) -> date:
    """Yesterday in UTC: the last day whose data interval has ended."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).date() - timedelta(days=1)


def logical_date_of(day: date) -> str:
    """The Airflow logical date of the run that processes `day`: the end of its interval, day + 1 (00:00 UTC)."""
    return (day + timedelta(days=1)).isoformat()


def days_to_run(on: date | None, since: date | None, now: datetime | None = None) -> list[date]:
    last = latest_complete_day(now)
    if since is not None:
        if since > last:
            raise ValueError(f"--since {since}: the latest complete day is {last} (UTC); nothing to run")
        return [since + timedelta(days=i) for i in range((last - since).days + 1)]
    day = on or last
    if day > last:
        raise ValueError(f"--date {day}: that day's data interval has not ended yet (latest complete day: {last} "
                         f"UTC)")
    return [day]


# --- preflight ------------------------------------------------------------------------------------------------------

def _settings_class(source: str):
    from extractors.common.connection import settings_module

    return settings_module(source).SETTINGS


def _metadata_connections(env: dict) -> set[str]:
    """conn_ids stored in an existing metadata DB (empty when it does not exist yet)."""
    url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return set()
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(url)
        try:
            with eng.connect() as con:
                return {r[0] for r in con.execute(sa.text("SELECT conn_id FROM connection"))}
        finally:
            eng.dispose()
    except Exception:
        return set()


def preflight(env: dict) -> list[str]:
    """Problems that would fail the run at once, found before Airflow starts: each source's settings read exactly as
    its extractor reads them (from the environment), unless an Airflow connection `cxw_<source>` may provide them
    (an `AIRFLOW_CONN_CXW_<SOURCE>` variable, a connection in the metadata DB, or a secrets backend); and the
    public demo PII salt against a real system. Messages name settings, never values."""
    from cxw import SOURCES
    from extractors.common.settings import ConfigurationError

    from cxw.connections import conn_id

    problems: list[str] = []
    stored = _metadata_connections(env)
    backend = bool(env.get("AIRFLOW__SECRETS__BACKEND"))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        all_from_env = True
        for source in SOURCES:
            cid = conn_id(source)
            if backend or f"AIRFLOW_CONN_{cid.upper()}" in env or cid in stored:
                all_from_env = False
                continue
            try:
                settings = _settings_class(source).from_env()
                if source == "odoo":  # the ERP mapping, checked as the extract checks it (issue 17.7)
                    from extractors.odoo.mapping import check_contract, load_mapping

                    check_contract(load_mapping(settings.mapping_path), settings.mapping_path)
            except ConfigurationError as exc:
                setting = getattr(exc, "setting", None) or "?"
                problems.append(f"{source}: {exc} — set {setting} (environment, .env, or the Airflow connection "
                                f"{cid}; see .env.example)")
        if all_from_env and not problems:
            from cxw.pii import require_private_salt

            try:
                require_private_salt(list(SOURCES))
            except ConfigurationError as exc:
                problems.append(str(exc))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return problems


# --- progress -------------------------------------------------------------------------------------------------------

class MetadataWatch:
    """Reads the DAG run and its task instances (and the rows the tasks returned) from the Airflow metadata DB."""

    def __init__(self, env: dict, logical_date: str):
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        self.want = logical_date[:10]

    def close(self) -> None:
        self.engine.dispose()

    def run(self) -> tuple[str, str] | None:
        """(run_id, state) of the newest run of the logical date, or None."""
        with self.engine.connect() as con:
            rows = con.execute(self.sa.text("SELECT id, run_id, logical_date, state FROM dag_run WHERE dag_id = :d"),
                               {"d": DAG_ID}).fetchall()
        mine = [r for r in rows if str(r[2] or "")[:10] == self.want]
        if not mine:
            return None
        r = max(mine, key=lambda r: r[0])
        return str(r[1]), str(r[3])

    def tasks(self, run_id: str) -> dict[str, tuple]:
        """{task_id: (state, start_date, duration_seconds)}."""
        with self.engine.connect() as con:
            rows = con.execute(self.sa.text(
                "SELECT task_id, state, start_date, duration FROM task_instance WHERE dag_id = :d AND run_id = :r"),
                {"d": DAG_ID, "r": run_id}).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def rows(self, run_id: str, task_id: str) -> int | None:
        """Rows the task's returned report names (extract: its loads' rows; load: rows landed), if any."""
        try:
            with self.engine.connect() as con:
                r = con.execute(self.sa.text(
                    "SELECT value FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = :t AND key = "
                    "'return_value'"), {"d": DAG_ID, "r": run_id, "t": task_id}).fetchone()
        except Exception:
            return None
        if not r or r[0] is None:
            return None
        value = r[0]
        try:
            while isinstance(value, (str, bytes)):
                value = json.loads(value)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        if isinstance(value.get("loads"), list):
            return sum(int(ld.get("rows") or 0) for ld in value["loads"] if isinstance(ld, dict))
        if isinstance(value.get("rows"), int):
            return value["rows"]
        return None


def _fmt(elapsed: float, task: str, state: str, secs: float | None, rows: int | None) -> str:
    s = f"  [{elapsed:5.0f}s] {task:<26} {state:<16}"
    if secs is not None:
        s += f" {secs:7.1f}s"
    if rows is not None:
        s += f"  {rows:,} rows"
    return s.rstrip()


def run_day(day: date, env: dict, out=None) -> dict:
    """Run the DAG for `day`'s data interval, printing task state changes; returns {day, logical_date, run_id,
    state, returncode, log, summary}."""
    from cxw.config import paths
    from cxw_tools.airflow_local import _bin
    from cxw.tasks import _safe

    out = out or sys.stdout
    p = paths()
    logical = logical_date_of(day)
    log_file = p.runs / f"cx-run-{day.isoformat()}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    print(f"cx run: day {day} = data interval [{day}T00:00Z, {logical}T00:00Z) = Airflow logical date {logical} "
          f"(`airflow dags test {DAG_ID} {logical}`)", file=out, flush=True)
    print(f"cx run: Airflow log: {log_file}", file=out, flush=True)
    watch = MetadataWatch(env, logical)
    seen: dict[str, str | None] = {}
    baseline_run = None
    try:
        before = watch.run()
        if before:
            baseline_run = before[0]
            seen = {t: v[0] for t, v in watch.tasks(before[0]).items()}
    except Exception:
        pass
    t0, started = time.monotonic(), time.time()
    with log_file.open("w") as fh:
        proc = subprocess.Popen([_bin("airflow"), "dags", "test", DAG_ID, logical], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
        run_id, state = None, None

        def poll() -> None:
            nonlocal run_id, state, seen
            try:
                r = watch.run()
                if not r:
                    return
                if r[0] != baseline_run and r[0] != run_id:
                    seen = {}
                run_id, state = r
                for task, (st, _start, dur) in sorted(watch.tasks(run_id).items(),
                                                      key=lambda kv: (str(kv[1][1] or "~"), kv[0])):
                    if seen.get(task, "<none>") == st:
                        continue
                    seen[task] = st
                    if st is None:
                        continue
                    done = st in ("success", "failed", "skipped", "upstream_failed", "removed")
                    secs = float(dur) if done and dur is not None else None
                    rows = watch.rows(run_id, task) if st == "success" else None
                    print(_fmt(time.monotonic() - t0, task, st, secs, rows), file=out, flush=True)
            except Exception:  # the DB is being written (SQLite lock, migration): next poll
                return

        while proc.poll() is None:
            poll()
            time.sleep(POLL_S)
        poll()
    watch.close()
    rc = proc.returncode
    summary_text = None
    if run_id:
        f = p.runs / _safe(run_id) / "summary.txt"
        if f.exists() and f.stat().st_mtime >= started - 5:
            summary_text = f.read_text()
    print("", file=out)
    if summary_text:
        print(summary_text, file=out, flush=True)
    else:
        print(f"cx run: no summary was written for {day} (the run stopped before its summarize task); last lines "
              f"of the Airflow log {log_file}:", file=out)
        print(log_file.read_text()[-3000:], file=out, flush=True)
    return {"day": day.isoformat(), "logical_date": logical, "run_id": run_id, "state": state or "unknown",
            "returncode": rc, "log": str(log_file), "summary": summary_text}


def read_env_file(prog: str, env_file: Path | None, out) -> int | None:
    """The `--env-file` of `./cx run` and `./cx doctor`: apply it (default `<repo>/.env`, skipped when absent) and
    say how many settings it gave; returns 2 (the exit code) when it is malformed or an explicit one is missing."""
    explicit = env_file is not None
    env_file = env_file or REPO_ROOT / ".env"
    if env_file.exists():
        try:
            added, kept = apply_env_file(env_file)
        except ValueError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        print(f"{prog}: read {len(added)} settings from {env_file}"
              + (f" ({len(kept)} already set in the environment, which wins)" if kept else ""), file=out)
    elif explicit:
        print(f"{prog}: --env-file {env_file} does not exist", file=sys.stderr)
        return 2
    return None


def main(on: date | None = None, since: date | None = None, env_file: Path | None = None,
         out=None) -> int:
    out = out or sys.stdout
    if (rc := read_env_file("cx run", env_file, out)) is not None:
        return rc
    try:
        days = days_to_run(on, since)
    except ValueError as exc:
        print(f"cx run: {exc}", file=sys.stderr)
        return 2
    from cxw_tools.airflow_local import airflow_env, prepare_airflow

    env = airflow_env()
    problems = preflight(env)
    if problems:
        print("cx run: not configured - nothing was run:", file=sys.stderr)
        for pr in problems:
            print(f"  {pr}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    print("cx run: preparing Airflow (metadata DB, pool cxw_build_db, DAG serialization)", file=out, flush=True)
    prepare_airflow(env)
    print(f"cx run: Airflow ready in {time.perf_counter() - t0:.0f}s; {len(days)} day(s) to run: "
          f"{days[0]}" + (f" … {days[-1]}" if len(days) > 1 else ""), file=out, flush=True)
    for i, day in enumerate(days):
        res = run_day(day, env, out=out)
        if res["returncode"] != 0 or res["state"] != "success":
            rest = days[i + 1:]
            print(f"cx run: the run for {day} FAILED (state {res['state']}, exit {res['returncode']}); Airflow log: "
                  f"{res['log']}" + (f"; not run: {rest[0]} … {rest[-1]}" if rest else ""), file=sys.stderr)
            return 1
    print(f"cx run: done in {time.perf_counter() - t0:.0f}s", file=out, flush=True)
    return 0
