"""`./cx bench` / `make bench`: stage timings of the real DAG under Airflow, and ratios against a DuckDB floor.

    python -m cxw_tools bench [--scale S|M|L] [--repeat 3] [--seed 42] [--memory-limit 4GB] [--home DIR] [--out DIR]

Per repetition, in a fresh CXW_HOME (its own project-local Airflow SQLite DB, copied from one migrated template):

1. full        `airflow dags test` on the demo company generated with as_of = window end − N days (default 2)
2. floor       the same transforms as ONE DuckDB script generated from dbt's manifest of run 1 (compiled SQL in
               topological order), run in a fresh database holding only the inputs (sources, seeds, snapshots)
3. loader      cxw.loader over the landed files of run 1 vs DuckDB's own `create table as select * from read_parquet`
4. incremental the DAG on the demo generated at the window end (≈1 % new data: new/late events, updates, reviews)
5. no-op       the same logical date again (nothing new)
6. hourly      the DAG with CXW_SCHEDULE=hourly on the hour [B, B+1h) after data set B's as-of, the sources serving the
               demo generated as of B+1h with the day in progress as a GA4 intraday table (hourly_step)

Once at the end: `dbt build --full-refresh` on a copy of the last repetition's build database (or, with
--e2e-full-refresh, the whole DAG on the window-end data in another fresh home); its published tables, read as
published (cxw.publish.published_fingerprint), must have the same fingerprints (count + sum of row hashes,
cxw.publish.table_fingerprint) as the incremental run's published file.

Every process of a DAG run (the `airflow` process and its children, including the dbt subprocess) is sampled with
psutil for CPU seconds and RSS; the DuckDB temp directory (<build db>.tmp) is sampled for spill bytes. Task start
and end come from the task_instance table of the run's Airflow metadata DB, rows per stage from the run summary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cxw.config import DBT_PROJECT_DIR, REPO_ROOT, paths
from cxw_tools.bench import BenchError
from cxw_tools.bench.floor import fingerprints, floor_plan, floor_script_text, prepare_floor_db
from cxw_tools.bench.report import EXECUTORS, _write, figures
from cxw_tools.bench.sampler import Sampler, run_sampled

DAG_ID = "cx_pipeline"
MEMORY_LIMIT_ENV = "CXW_DUCKDB_MEMORY_LIMIT"  # read by dbt_project/profiles.yml (duckdb settings.memory_limit)
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# data set C's GA4: a day's daily table lands 6 h after the day ended (as in the DECISIONLOG's hourly run), so at
# B+1h the day that ended at B is the export's streaming table `events_intraday_YYYYMMDD` (the demo company has no
# activity after the window end, so there is no later day; any value <= 1 h would show that day as a daily table and
# the hour would carry no intraday table at all)
HOURLY_GA4_INTRADAY_DELAY_H = 6.0


# ---------------------------------------------------------------------------------------------------------------
# One DAG run under `airflow dags test`
# ---------------------------------------------------------------------------------------------------------------

def _utc_epoch(s: str | None) -> float | None:
    if not s:
        return None
    d = dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def _iso_utc(s: str | None) -> str | None:
    e = _utc_epoch(s)
    return None if e is None else dt.datetime.fromtimestamp(e, dt.timezone.utc).isoformat()


def hourly_step(as_of_b: str) -> dict:
    """Step 6: the hour after data set B's as-of. Under the hourly timetable (CronDataIntervalTimetable "0 * * * *")
    `airflow dags test cx_pipeline <T>` runs the interval ending at T, so the hour [B, B+1h) is logical date B+1h
    (docs/DECISIONLOG.md "Hourly runs": logical date 14:00 published [13:00, 14:00)); its sources show the demo
    company as of B+1h."""
    b = dt.datetime.fromisoformat(as_of_b)
    b = b.replace(tzinfo=dt.timezone.utc) if b.tzinfo is None else b.astimezone(dt.timezone.utc)
    end = b + dt.timedelta(hours=1)
    return {"logical_date": end.isoformat(), "data_interval": [b.isoformat(), end.isoformat()],
            "as_of": end.isoformat(), "env": {"CXW_SCHEDULE": "hourly"},
            "ga4_intraday_delay_h": HOURLY_GA4_INTRADAY_DELAY_H}


def hourly_checks(home: Path, step: dict, run: dict) -> dict:
    """The hourly run's sanity checks (raises BenchError): it ran the hour of ``step``, and published a new
    generation of that as-of or found nothing new ('unchanged'). Returns what it read: GA4 intraday rows in raw, the
    published generation's as_of."""
    import duckdb

    if run["data_interval"] != step["data_interval"]:
        raise BenchError(f"hourly: the run's data interval {run['data_interval']} is not {step['data_interval']}")
    if run.get("publication_status") not in ("published", "unchanged"):
        raise BenchError(f"hourly: publication {run.get('publication_status')!r}, not published or unchanged")
    out: dict = {}
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        out["ga4_intraday_rows"] = con.execute("select count(*) from raw_ga4.events "
                                               "where _export_table like 'events_intraday_%'").fetchone()[0]
    finally:
        con.close()
    con = duckdb.connect(str(home / "published" / "cx_warehouse.duckdb"), read_only=True)
    try:
        out["published_as_of"] = sorted({str(a) for a, in con.execute(
            "select distinct as_of from main.publication_freshness").fetchall()})
    finally:
        con.close()
    want = _utc_epoch(step["data_interval"][1])
    if run["publication_status"] == "published" and [_utc_epoch(a) for a in out["published_as_of"]] != [want]:
        raise BenchError(f"hourly: published as_of {out['published_as_of']}, not {step['data_interval'][1]}")
    return out


def _read_run(airflow_db: Path, before: set[str] | None = None) -> tuple[dict, list[dict]]:
    """The newest DAG run (not one of the run ids in ``before``) and its task instances."""
    con = sqlite3.connect(str(airflow_db))
    con.row_factory = sqlite3.Row
    try:
        runs = con.execute("select run_id, logical_date, data_interval_start, data_interval_end, start_date, "
                           "end_date, state from dag_run where dag_id = ? "
                           "order by id desc", [DAG_ID]).fetchall()
        run = next((r for r in runs if r["run_id"] not in (before or set())), None)
        if run is None:
            raise BenchError(f"no new dag_run in {airflow_db}")
        tis = con.execute("select task_id, start_date, end_date, duration, state, try_number from task_instance "
                          "where dag_id = ? and run_id = ? order by start_date", [DAG_ID, run["run_id"]]).fetchall()
        return dict(run), [dict(r) for r in tis]
    finally:
        con.close()


def _layer_rows(build_db: Path) -> dict:
    import duckdb

    if not build_db.exists():
        return {}
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        rows = con.execute(
            "select case when schema_name like 'raw\\_%' escape '\\' then 'raw' else schema_name end, "
            "sum(estimated_size)::bigint from duckdb_tables() where database_name = current_database() "
            "group by 1").fetchall()
        return {k: int(v or 0) for k, v in rows}
    finally:
        con.close()


def _stage_rows(summary: dict, layer_rows: dict) -> dict:
    rows: dict[str, int | None] = {}
    for e in summary.get("extracted") or []:
        k = f"extract_{e.get('source')}"
        rows[k] = rows.get(k, 0) + int(e.get("rows") or 0)
    load = summary.get("load") or {}
    rows["load_raw"] = sum(int(t.get("rows") or 0) for t in (load.get("tables") or {}).values())
    for table, t in (load.get("tables") or {}).items():  # raw_<source>.<entity>
        k = "load_" + table.split(".", 1)[0].removeprefix("raw_")
        rows[k] = rows.get(k, 0) + int(t.get("rows") or 0)
    rows["dbt_build"] = sum(v for k, v in layer_rows.items() if k != "raw" and not k.startswith("_"))
    pub = summary.get("publication") or {}
    rows["publish"] = sum(int(v or 0) for v in (pub.get("tables") or {}).values())
    val = summary.get("validation") or {}
    checked = val.get("checked_tables") or []
    if checked and pub.get("tables"):
        rows["validate"] = sum(int(pub["tables"].get(t, 0) or 0) for t in checked if isinstance(t, str))
    return rows



@contextlib.contextmanager
def execution_api(env: dict, log_file: Path):
    """An `airflow api-server --apps execution` on a free loopback port, for LocalExecutor workers to report to
    (what a deployment's api-server does); yields (the variables `dags test --use-executor` needs, server pid).
    Started before the runs' clocks start, stopped after: in a deployment it is always up."""
    import secrets
    import socket
    import urllib.request

    from cxw_tools.demo import _bin

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    extra = {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
             "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
             # the workers' task tokens are signed by `dags test` and checked by the server: one shared secret
             "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
             "AIRFLOW__CORE__PARALLELISM": "8"}
    env = {**env, **extra}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as fh:
        proc = subprocess.Popen([_bin("airflow"), "api-server", "--apps", "execution", "-H", "127.0.0.1", "-p",
                                 str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            deadline = time.time() + 120
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"the execution API server exited ({proc.returncode}): "
                                     f"{log_file.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health", timeout=2):
                        break
                except OSError:
                    if time.time() > deadline:
                        raise BenchError(f"the execution API server did not answer in 120 s; log: {log_file}") from None
                    time.sleep(0.3)
            yield extra, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def reset_demo_server(info: dict) -> None:
    """Put a running demo source server (the ready-file ``info`` of :func:`cxw_tools.demo.demo_server_info`) back in the
    state of one just started: no rate-limit window, no response cache, no request log, no issued tokens."""
    import urllib.request

    req = urllib.request.Request(info["base_url"] + "/_demo/reset", data=json.dumps({"caches": True}).encode(),
                                 method="POST", headers={"X-Demo-Admin": info["admin_token"],
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    if not body.get("caches"):
        raise BenchError(f"the demo server at {info['base_url']} did not reset its caches: {body}")


def _ti_ids(airflow_db: Path, run_id: str) -> dict[str, str]:
    con = sqlite3.connect(str(airflow_db))
    try:
        return {t: str(i).replace("-", "") for t, i in con.execute(
            "select task_id, id from task_instance where dag_id = ? and run_id = ?", [DAG_ID, run_id])}
    finally:
        con.close()


def _run_finished(airflow_db: Path):
    """A callable: has a DAG run that was not in ``airflow_db`` when this was called now reached a final state?
    (Compared by run_id against every run present before: `dags test` of a logical date that already has a run
    deletes that row before it inserts its own, and meanwhile an older run is the newest row.)"""
    def run_ids() -> set[str]:
        con = sqlite3.connect(str(airflow_db), timeout=5)
        try:
            return {r for r, in con.execute("select run_id from dag_run where dag_id = ?", [DAG_ID])}
        finally:
            con.close()

    before = run_ids()

    def finished() -> bool:
        try:
            con = sqlite3.connect(str(airflow_db), timeout=5)
            try:
                rows = con.execute("select run_id, state from dag_run where dag_id = ?", [DAG_ID]).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return False
        return any(rid not in before and state in ("success", "failed") for rid, state in rows)
    finished.before = before  # type: ignore[attr-defined]
    return finished


def _union_s(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the intervals (tasks running in parallel count once)."""
    total, end = 0.0, None
    for a, b in sorted(spans):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def _home_env(home: Path, extra_env: dict, airflow_home: Path | None = None) -> dict:
    """The environment of Airflow processes working in the repetition home ``home``, with the Airflow metadata in
    ``airflow_home`` (default ``home/airflow``)."""
    from cxw_tools.demo import airflow_env

    os.environ["CXW_HOME"] = str(home)
    os.environ["AIRFLOW_HOME"] = str(airflow_home or home / "airflow")
    os.environ.pop("CXW_BUILD_DB", None)
    env = airflow_env()
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{paths().airflow_home / 'airflow.db'}"
    env.update(extra_env)
    return env


def dag_run(label: str, home: Path, data_dir: Path, manifest: dict, logical_date: str, extra_env: dict,
            executor: str = "local", base_url: str | None = None, api: tuple[dict, int] | None = None,
            airflow_home: Path | None = None) -> dict:
    """Run the DAG once for `logical_date` against the demo data in `data_dir`; return its measurements.
    ``base_url``: the demo sources serving ``data_dir``, ``api``: what :func:`execution_api` yielded for the Airflow
    metadata DB in ``airflow_home`` (default ``home/airflow``); both are started here when not given."""
    from cxw_tools.demo import _bin, demo_server, source_env
    from cxw.tasks import _safe

    env = _home_env(home, extra_env, airflow_home)
    p = paths()
    spill_dirs = [Path(str(p.build_db) + ".tmp")]
    cmd = [_bin("airflow"), "dags", "test", DAG_ID, logical_date]
    with contextlib.ExitStack() as stack:
        if base_url is None:
            base_url = stack.enter_context(demo_server(data_dir))
        env.update(source_env(data_dir, manifest, base_url))
        extra_pids: tuple[int, ...] = ()
        if executor == "local":
            if api is None:
                api = stack.enter_context(execution_api(env, home / "bench" / f"{label}-api-server.log"))
            env.update(api[0])
            cmd.append("--use-executor")
            extra_pids = (api[1],)
        finished = _run_finished(p.airflow_home / "airflow.db")
        res = run_sampled(cmd, env, home / "bench" / f"{label}.log", spill_dirs, extra_pids=extra_pids,
                          finished=finished)
    sampler: Sampler = res.pop("sampler")
    run, tis = _read_run(p.airflow_home / "airflow.db", finished.before)
    if (res["returncode"] != 0 and not res["terminated_after_finish"]) or run["state"] != "success":
        tail = (home / "bench" / f"{label}.log").read_text()[-4000:]
        raise BenchError(f"{label}: DAG run state {run['state']} (exit {res['returncode']}):\n{tail}")
    stages = {ti["task_id"]: (_utc_epoch(ti["start_date"]), _utc_epoch(ti["end_date"])) for ti in tis}
    per_stage = sampler.attribute({k: v for k, v in stages.items() if v[0] and v[1]},
                                  _ti_ids(p.airflow_home / "airflow.db", run["run_id"]) if executor == "local" else None)
    summary_file = p.runs / _safe(run["run_id"]) / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    stage_rows = _stage_rows(summary, _layer_rows(p.build_db))
    tasks = {}
    for ti in tis:
        tid = ti["task_id"]
        a, b = stages.get(tid) or (None, None)
        tasks[tid] = {"wall_s": round(float(ti["duration"] or 0), 3), "state": ti["state"],
                      "try_number": ti["try_number"], "rows": stage_rows.get(tid),
                      # when the task ran, in seconds since `dags test` was launched (a Gantt chart of the run)
                      "start_s": round(a - res["t0"], 3) if a else None, "end_s": round(b - res["t0"], 3) if b else None,
                      **per_stage.get(tid, {})}
    sum_tasks = sum(t["wall_s"] for t in tasks.values())
    loads = {k: v for k, v in tasks.items() if k.startswith("load_")}
    if loads and "load_raw" not in tasks:
        # the per-source load tasks as one stage. Wall: the time during which one of them ran (one writer at a
        # time: the pool under a scheduler; under `dags test --use-executor`, which ignores pools, a load waits for
        # the DuckDB file lock inside its task, cxw.loader.connect_writer)
        tasks["load_raw"] = {
            "wall_s": round(_union_s([stages[k] for k in loads if stages[k][0] and stages[k][1]]), 3),
            "state": "success" if all(v["state"] == "success" for v in loads.values()) else "partial",
            "rows": stage_rows.get("load_raw"), "aggregate_of": sorted(loads),
            "cpu_s": round(sum(v.get("cpu_s", 0) for v in loads.values()), 2),
            "peak_rss_mb": max(v.get("peak_rss_mb", 0) for v in loads.values()),
            "peak_spill_bytes": max(v.get("peak_spill_bytes", 0) for v in loads.values())}
    # span from the first task start to the last task end (dag_run.start_date is not the wall start under dags test)
    spans = [v for v in stages.values() if v[0] and v[1]]
    dr_s = (max(b for _, b in spans) - min(a for a, _ in spans)) if spans else 0.0
    busy_s = _union_s(spans)  # = sum_tasks when tasks ran one at a time
    extract_spans = [v for k, v in stages.items() if k.startswith("extract_") and v[0] and v[1]]
    dbt = summary.get("dbt") or {}
    # end to end: from launching `airflow dags test` to the run's end as Airflow records it (the process then only
    # shuts down: LocalExecutor joins its workers; a scheduler in a deployment would not stop at all)
    run_end = _utc_epoch(run.get("end_date"))
    e2e = round(run_end - res["t0"], 3) if run_end and res["t0"] < run_end <= res["t1"] + 1 else res["wall_s"]
    return {
        "label": label, "logical_date": logical_date, "run_id": run["run_id"], "state": run["state"],
        "data_interval": [_iso_utc(run.get("data_interval_start")), _iso_utc(run.get("data_interval_end"))],
        "executor": executor,
        "e2e_wall_s": e2e, "process_wall_s": res["wall_s"], "terminated_after_finish": res["terminated_after_finish"],
        "task_span_s": round(dr_s, 3), "sum_task_wall_s": round(sum_tasks, 3), "task_busy_s": round(busy_s, 3),
        # wall during which no task of the run was running: start-up and scheduling gaps
        "airflow_overhead_s": round(e2e - busy_s, 3),
        "extract_wall_s": round(sum(t["wall_s"] for k, t in tasks.items() if k.startswith("extract_")), 3),
        "extract_span_s": round(_union_s(extract_spans), 3),
        "cpu_s": res["cpu_s_rusage"], "max_single_process_rss_mb": res["max_single_rss_mb_rusage"],
        **sampler.totals(), "outside_tasks": per_stage.get("(outside tasks)"),
        "tasks": tasks, "dbt_elapsed_s": (dbt.get("results") or {}).get("elapsed"),
        "dbt_counts": (dbt.get("results") or {}).get("counts"),
        "publication_status": (summary.get("publication") or {}).get("status"),
        "summary_status": summary.get("status"), "dbt_skipped": bool(dbt.get("skipped")),
        "kpi_window": dbt.get("kpi_window"),
    }


def dbt_full_refresh(home: Path, kpi_window: list | None, extra_env: dict) -> dict:
    """`dbt build --full-refresh` (seeds, snapshots, models; no tests) on a copy of home's build database (same raw
    tables, same KPI window as the run it is compared with), sampled like the DAG; returns its measurements and the
    copy's published fingerprints."""
    from cxw.dbt import dbt_env, kpi_window_vars

    work = home / "bench" / "full-refresh"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "build.duckdb"
    shutil.copy(home / "warehouse" / "build.duckdb", db)
    os.environ["CXW_HOME"] = str(home)
    env = dbt_env()
    env.update(extra_env)
    env.update({"CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs")})
    dbt_bin = Path(sys.executable).parent / "dbt"
    # data tests and unit tests change no table (the pipeline's runs have just run the data tests): left out here
    res = run_sampled([str(dbt_bin), "build", "--full-refresh", "--exclude-resource-type", "test",
                       "--exclude-resource-type", "unit_test", "--project-dir", str(DBT_PROJECT_DIR),
                       "--target", "duckdb", *kpi_window_vars(kpi_window)], env, work / "dbt.log",
                      [Path(str(db) + ".tmp")])
    sampler = res.pop("sampler")
    if res["returncode"] != 0:
        raise BenchError(f"dbt --full-refresh failed: {(work / 'dbt.log').read_text()[-3000:]}")
    return {"wall_s": res["wall_s"], "cpu_s": res["cpu_s_rusage"], **sampler.totals(),
            # as published: compared with the incremental run's published file
            "fingerprints": fingerprints(db, as_published=True), "kpi_window": kpi_window}


# ---------------------------------------------------------------------------------------------------------------
# Loader vs DuckDB's own Parquet load
# ---------------------------------------------------------------------------------------------------------------

def loader_vs_duckdb(raw_root: Path, work: Path, task: dict | None = None) -> dict:
    """DuckDB's own ``create table as select * from read_parquet([files], union_by_name)`` per source/entity over
    the landed files of ``raw_root``, against the loader's rate. ``task``: the full run's ``load_raw`` task (rows,
    wall_s): the loader as the pipeline ran it, Airflow task included. Without it the loader is run again here
    (``load_into_duckdb(force=True)`` into an empty file; ``--loader-standalone``)."""
    import duckdb

    from cxw.loader import complete_loads, load_into_duckdb

    work.mkdir(parents=True, exist_ok=True)
    a, b = work / "loader.duckdb", work / "native.duckdb"
    for f in (a, b):
        f.unlink(missing_ok=True)
    if task is None:
        t0 = time.perf_counter()
        rep = load_into_duckdb(raw_root, a, force=True)
        loader_s = time.perf_counter() - t0
        rows = sum(t["rows"] for t in rep["tables"].values())
        how = "standalone: load_into_duckdb(force=True) into an empty file"
    else:
        loader_s, rows = task["wall_s"], task["rows"]
        how = "the full run's load_raw task (Airflow task wall)"
    groups: dict[tuple[str, str], list[str]] = {}
    for ld in complete_loads(raw_root):
        groups.setdefault((ld.source, ld.entity), []).extend(str(f) for f in ld.files)
    t1 = time.perf_counter()
    con = duckdb.connect(str(b))
    native_rows = 0
    try:
        for (source, entity), files in sorted(groups.items()):
            if not files:
                continue
            con.execute(f"create schema if not exists raw_{source}")
            con.execute(f"create table raw_{source}.{entity} as select * from read_parquet(?, union_by_name = true)",
                        [files])
            native_rows += con.execute(f"select count(*) from raw_{source}.{entity}").fetchone()[0]
        con.execute("checkpoint")
    finally:
        con.close()
    native_s = time.perf_counter() - t1
    for f in (a, b):
        f.unlink(missing_ok=True)
    return {"rows": rows, "native_rows": native_rows, "files": sum(len(v) for v in groups.values()),
            "loader": how, "loader_s": round(loader_s, 3), "native_s": round(native_s, 3),
            "loader_rows_per_s": round(rows / loader_s) if loader_s else None,
            "native_rows_per_s": round(native_rows / native_s) if native_s else None,
            "ratio": round((rows / loader_s) / (native_rows / native_s), 3) if loader_s and native_s and native_rows
            else None}


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------

def _generate(bench_home: Path, scale: str, seed: int, as_of: str,
              ga4_intraday_delay_h: float | None = None) -> tuple[Path, dict]:
    import demo_company

    out = bench_home / "demo" / (f"{scale}-{seed}-asof-{as_of}"
                                 + ("" if ga4_intraday_delay_h is None else f"-intraday-{ga4_intraday_delay_h:g}h"))
    mf = out / "manifest.json"
    if not mf.exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        print(f"bench: generating the demo company {scale} seed {seed} as of {as_of}", flush=True)
        demo_company.generate(tmp, scale=scale, seed=seed, as_of=as_of, ga4_intraday_delay_h=ga4_intraday_delay_h)
        os.replace(tmp, out)
        print(f"bench: generated in {time.perf_counter() - t0:.1f}s", flush=True)
    return out, json.loads(mf.read_text())


def _airflow_template(bench_home: Path) -> Path:
    from cxw_tools.demo import airflow_env, prepare_airflow

    tpl = bench_home / "airflow-template"
    os.environ["AIRFLOW_HOME"] = str(tpl)
    os.environ["CXW_HOME"] = str(bench_home)
    env = airflow_env()
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tpl / 'airflow.db'}"
    # migrate, pool and serialized DAG are redone only when the DAG's code or Airflow changed since the last bench
    stamp = tpl / ".prepared"
    want = _dag_code_hash()
    if (tpl / ".migrated").exists() and stamp.exists() and stamp.read_text() == want:
        print("bench: the Airflow metadata template is current", flush=True)
        return tpl
    print("bench: preparing the Airflow metadata template (migrate, pool, serialize)", flush=True)
    stamp.unlink(missing_ok=True)
    prepare_airflow(env)  # idempotent
    stamp.write_text(want)
    return tpl


def _dag_code_hash() -> str:
    """What the serialized DAG in the template depends on: the DAG folder, the package it imports, Airflow's version."""
    import hashlib

    import airflow

    from cxw.config import DAGS_DIR, REPO_ROOT

    h = hashlib.sha256(f"airflow {airflow.__version__}".encode())
    for f in sorted(DAGS_DIR.rglob("*.py")) + [REPO_ROOT / "cxw" / "__init__.py"]:
        h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _fresh_home(home: Path, tpl: Path | None) -> None:
    """An empty repetition home; with ``tpl``, its own Airflow metadata DB (``home/airflow``) copied from it."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if tpl is not None:
        _fresh_airflow_home(home / "airflow", tpl)


def _fresh_airflow_home(af_home: Path, tpl: Path) -> None:
    shutil.rmtree(af_home, ignore_errors=True)
    af_home.mkdir(parents=True)
    con = sqlite3.connect(str(tpl / "airflow.db"))  # copy the SQLite file consistently
    try:
        dst = sqlite3.connect(str(af_home / "airflow.db"))
        con.backup(dst)
        # WAL: readers do not block the writer. Under LocalExecutor the `dags test` loop and the execution API
        # server share this file; in the default rollback journal a reader's lock held the server's state updates
        # back (a run hung there once).
        dst.execute("pragma journal_mode=wal")
        dst.close()
    finally:
        con.close()
    (af_home / ".migrated").write_text("ok")


def floor_run(home: Path, manifest_file: Path, memory_limit: str | None) -> dict:
    """Generate the floor from `manifest_file`, link the inputs of home's build DB, run it sampled, compare."""
    p_build = home / "warehouse" / "build.duckdb"
    work = home / "bench" / "floor"
    work.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(manifest_file.read_text())
    plan = floor_plan(manifest)
    (work / "floor.sql").write_text(floor_script_text(plan))
    db = work / "floor.duckdb"
    prep = prepare_floor_db(p_build, db, plan["inputs"])
    (work / "plan.json").write_text(json.dumps({**plan, "attach": prep["attach"]}))
    out = work / "result.json"
    res = run_sampled([sys.executable, "-m", "cxw_tools.bench.floor", str(db), str(work / "plan.json"), str(out),
                       memory_limit or ""], dict(os.environ), work / "floor.log", [Path(str(db) + ".tmp")])
    sampler = res.pop("sampler")
    if res["returncode"] != 0:
        raise BenchError(f"floor script failed: {(work / 'floor.log').read_text()[-3000:]}")
    r = json.loads(out.read_text())
    # the published schemas also hold the analyze task's tables (cxw.analytics: Python, not dbt): the floor
    # reproduces dbt's models only, so only those are compared
    models = {f"{n['schema']}.{n.get('alias') or n['name']}" for n in (manifest["nodes"][u] for u, _ in plan["models"])}
    fp_all = fingerprints(p_build)
    fp_dbt = {k: v for k, v in fp_all.items() if k in models}
    fp_floor = fingerprints(db, tables=list(fp_dbt))
    mismatch = sorted(k for k in fp_dbt if fp_dbt[k] != fp_floor.get(k))
    return {**r, "prep": prep, "process_wall_s": res["wall_s"], "cpu_s": res["cpu_s_rusage"],
            **{k: v for k, v in sampler.totals().items() if k in ("peak_rss_mb", "peak_spill_bytes")},
            "notes": plan["notes"], "script": str(work / "floor.sql"),
            "published_tables_compared": len(fp_dbt), "fingerprint_mismatches": mismatch,
            "published_tables_not_dbt": sorted(set(fp_all) - set(fp_dbt))}


def speed_probe() -> dict:
    """A fixed CPU workload timed at the start and end of a bench, so results from different days (or a host that
    got slower) can be told apart: one DuckDB aggregate over 100M generated rows (all cores) and a 10M-step Python
    loop (one core)."""
    import duckdb

    con = duckdb.connect()
    try:
        t0 = time.perf_counter()
        con.execute("select sum(hash(i) % 1000) from range(100000000) t(i)").fetchone()
        duck_s = time.perf_counter() - t0
    finally:
        con.close()
    t1 = time.perf_counter()
    acc = 0
    for i in range(10_000_000):
        acc += i & 7
    return {"duckdb_s": round(duck_s, 3), "python_s": round(time.perf_counter() - t1, 3)}


def run_bench(scale: str = "S", seed: int = 42, repeat: int = 3, memory_limit: str | None = None,
              bench_home: Path | None = None, out_dir: Path | None = None, incremental_days: int = 2,
              keep: bool = False, e2e_full_refresh: bool = False, loader_standalone: bool = False,
              executor: str = "local", full_only: bool = False) -> dict:
    """``full_only``: per repetition only the full run, the floor and the DuckDB load (one data set; no incremental,
    no-op or full-refresh check) — what scale L needs to show it finishes within its memory limit."""
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START

    import psutil

    from cxw_tools.demo import demo_server_info

    bench_home = (bench_home or paths().home / "bench").resolve()
    out_dir = out_dir or RESULTS_DIR
    if scale == "L" and not memory_limit:
        memory_limit = "4GB"
    extra_env = {MEMORY_LIMIT_ENV: memory_limit} if memory_limit else {}
    end = DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS)
    as_of_a = (end - dt.timedelta(days=incremental_days)).isoformat()
    started = dt.datetime.now(dt.timezone.utc)
    result: dict = {
        "scale": scale, "seed": seed, "repeat": repeat, "started_at": started.isoformat(timespec="seconds"),
        "memory_limit": memory_limit, "incremental_days": incremental_days, "loader_standalone": loader_standalone,
        "executor": executor, "full_only": full_only,
        "machine": {"cpus": os.cpu_count(), "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "load_avg_start": os.getloadavg()},
        "reps": [], "full_refresh": None,
    }
    import duckdb
    result["machine"]["duckdb"] = duckdb.__version__
    # where the bench's own wall time goes, outside the repetitions too (each repetition has its own phases)
    bphases = result["harness_phases_s"] = {}

    def bphase(name, t0):
        bphases[name] = round(bphases.get(name, 0.0) + time.perf_counter() - t0, 1)
    t = time.perf_counter()
    result["machine"]["speed_probe_start"] = speed_probe()
    bphase("speed_probe", t)
    t = time.perf_counter()
    data_a, man_a = _generate(bench_home, scale, seed, as_of_a)
    data_b, man_b = _generate(bench_home, scale, seed, end.isoformat()) if not full_only else (None, None)
    hstep = result["hourly_step"] = hourly_step(end.isoformat())
    data_c, man_c = (_generate(bench_home, scale, seed, hstep["as_of"], hstep["ga4_intraday_delay_h"])
                     if not full_only else (None, None))
    bphase("generate_or_cached", t)
    t = time.perf_counter()
    tpl = _airflow_template(bench_home)
    bphase("airflow_template", t)
    date_a, date_b = as_of_a, end.isoformat()
    saved_env = {k: os.environ.get(k) for k in ("CXW_HOME", "AIRFLOW_HOME", "CXW_BUILD_DB")}
    servers = contextlib.ExitStack()
    af_home = bench_home / f"{scale}-{seed}-airflow"
    try:
        # one demo source server per data set for the whole bench, started outside every run's clock (a vendor's
        # API is always up); reset to its just-started state (no rate-limit window, no response cache, no
        # Trustpilot token) before each repetition, so every repetition meets the same cold server
        t = time.perf_counter()
        srv_a = servers.enter_context(demo_server_info(data_a))
        srv_b = servers.enter_context(demo_server_info(data_b)) if not full_only else None
        srv_c = servers.enter_context(demo_server_info(data_c)) if not full_only else None
        bphase("demo_servers", t)
        # one Airflow metadata DB (copied from the template) and one execution API server serving it, for all
        # repetitions: a deployment's metadata DB and API server outlive its runs. Every `dags test` run gets its
        # own run_id; each repetition has its own CXW_HOME (raw files, state, build and published databases).
        t = time.perf_counter()
        _fresh_airflow_home(af_home, tpl)
        api = servers.enter_context(execution_api(_home_env(bench_home / f"{scale}-{seed}-rep1", extra_env, af_home),
                                                  af_home / "api-server.log")) if executor == "local" else None
        bphase("execution_api_server", t)
        for i in range(1, repeat + 1):
            home = bench_home / f"{scale}-{seed}-rep{i}"
            t = time.perf_counter()
            _fresh_home(home, None)
            rep: dict = {"rep": i, "home": str(home)}
            phases = rep["harness_phases_s"] = {}

            def phase(name, t0):
                phases[name] = round(time.perf_counter() - t0, 1)
            for srv in (srv_a, srv_b, srv_c):
                if srv:
                    reset_demo_server(srv)
            url_a, url_b, url_c = srv_a["base_url"], srv_b and srv_b["base_url"], srv_c and srv_c["base_url"]
            phase("fresh_home_and_reset", t)
            print(f"bench: rep {i}/{repeat}: full run ({date_a})", flush=True)
            t = time.perf_counter()
            rep["full"] = dag_run("full", home, data_a, man_a, date_a, extra_env, executor, url_a, api,
                                  af_home)
            phase("full", t)
            shutil.copy(home / "dbt" / "target" / "manifest.json", home / "bench" / "manifest-full.json")
            print(f"bench: rep {i}: floor", flush=True)
            t = time.perf_counter()
            rep["floor"] = floor_run(home, home / "bench" / "manifest-full.json", memory_limit)
            phase("floor", t)
            print(f"bench: rep {i}: loader vs DuckDB", flush=True)
            t = time.perf_counter()
            rep["loader"] = loader_vs_duckdb(home / "raw", home / "bench" / "loader",
                                             None if loader_standalone else rep["full"]["tasks"]["load_raw"])
            phase("loader_vs_duckdb", t)
            if full_only:
                result["reps"].append(rep)
                t = time.perf_counter()
                _write(result, out_dir, partial=True)
                if not keep:
                    shutil.rmtree(home, ignore_errors=True)
                phase("write_and_cleanup", t)
                continue
            # data set B's sources serve both the incremental and the no-op run
            print(f"bench: rep {i}: incremental run ({date_b})", flush=True)
            t = time.perf_counter()
            rep["incremental"] = dag_run("incremental", home, data_b, man_b, date_b, extra_env, executor, url_b,
                                         api, af_home)
            phase("incremental", t)
            t = time.perf_counter()
            rep["incremental_fingerprints"] = fingerprints(home / "published" / "cx_warehouse.duckdb")
            phase("fingerprints", t)
            print(f"bench: rep {i}: no-op run ({date_b} again)", flush=True)
            t = time.perf_counter()
            rep["noop"] = dag_run("noop", home, data_b, man_b, date_b, extra_env, executor, url_b, api,
                                  af_home)
            phase("noop", t)
            t = time.perf_counter()
            noop_fp = fingerprints(home / "published" / "cx_warehouse.duckdb")
            rep["noop_changed_tables"] = sorted(k for k in noop_fp if noop_fp[k] != rep["incremental_fingerprints"]
                                                .get(k))
            phase("noop_fingerprints", t)
            result["reps"].append(rep)
            if i == repeat and not e2e_full_refresh:  # (full_only repetitions never get here)
                print(f"bench: rep {i}: dbt build --full-refresh on a copy of the build database", flush=True)
                t = time.perf_counter()
                fr = dbt_full_refresh(home, rep["incremental"].get("kpi_window"), extra_env)
                fr["kind"] = "dbt build --full-refresh, without tests, on the incremental run's raw tables"
                fr_fp, inc_fp = fr.pop("fingerprints"), rep["incremental_fingerprints"]
                fr["tables_compared"] = len(fr_fp)
                fr["mismatches_vs_incremental"] = sorted(k for k in set(fr_fp) | set(inc_fp)
                                                         if fr_fp.get(k) != inc_fp.get(k))
                result["full_refresh"] = fr
                bphase("full_refresh", t)
            # data set C's sources: the hour after B; the extractors continue from the cursors of the runs above (after
            # the full-refresh check, which compares a rebuild of the incremental run's raw tables)
            print(f"bench: rep {i}: hourly run ({hstep['logical_date']}: [{hstep['data_interval'][0]}, "
                  f"{hstep['data_interval'][1]}), CXW_SCHEDULE=hourly)", flush=True)
            t = time.perf_counter()
            rep["hourly"] = dag_run("hourly", home, data_c, man_c, hstep["logical_date"],
                                    {**extra_env, **hstep["env"]}, executor, url_c, api, af_home)
            phase("hourly", t)
            t = time.perf_counter()
            rep["hourly"].update(hourly_checks(home, hstep, rep["hourly"]))
            hourly_fp = fingerprints(home / "published" / "cx_warehouse.duckdb")
            rep["hourly_changed_tables"] = sorted(k for k in hourly_fp if hourly_fp[k] != noop_fp.get(k))
            phase("hourly_checks", t)
            t = time.perf_counter()
            _write(result, out_dir, partial=True)
            if not keep:
                shutil.rmtree(home, ignore_errors=True)
            phase("write_and_cleanup", t)
        if e2e_full_refresh and not full_only:
            home = bench_home / f"{scale}-{seed}-full-refresh"
            _fresh_home(home, tpl)
            print(f"bench: full refresh on the window-end data ({date_b})", flush=True)
            fr = dag_run("full_refresh", home, data_b, man_b, date_b, extra_env, executor)
            fr["kind"] = "the whole DAG in a fresh home on the window-end data"
            fr_fp = fingerprints(home / "published" / "cx_warehouse.duckdb")
            inc_fp = result["reps"][0]["incremental_fingerprints"]
            fr["tables_compared"] = len(fr_fp)
            fr["mismatches_vs_incremental"] = sorted(k for k in set(fr_fp) | set(inc_fp)
                                                     if fr_fp.get(k) != inc_fp.get(k))
            result["full_refresh"] = fr
            if not keep:
                shutil.rmtree(home, ignore_errors=True)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:6000]
        _write(result, out_dir, partial=True)
        raise
    finally:
        servers.close()
        if not keep:
            shutil.rmtree(af_home, ignore_errors=True)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result["machine"]["load_avg_end"] = os.getloadavg()
    t = time.perf_counter()
    result["machine"]["speed_probe_end"] = speed_probe()
    bphase("speed_probe", t)
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result["figures"] = figures(result)
    return _write(result, out_dir, partial=False)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="cx bench", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--scale", default="S", choices=["XS", "S", "M", "L"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of every figure (median reported)")
    ap.add_argument("--memory-limit", default=None,
                    help=f"DuckDB memory_limit for dbt and the floor (env {MEMORY_LIMIT_ENV}); default 4GB at L")
    ap.add_argument("--home", type=Path, default=None, help="bench working directory (default $CXW_HOME/bench)")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    ap.add_argument("--incremental-days", type=int, default=2,
                    help="the full run's data ends this many days before the window end")
    ap.add_argument("--keep", action="store_true", help="keep each repetition's CXW_HOME")
    ap.add_argument("--e2e-full-refresh", action="store_true",
                    help="check incremental = full refresh with a whole DAG run in a fresh home (default: dbt "
                         "--full-refresh on a copy of the last repetition's build database)")
    ap.add_argument("--executor", choices=EXECUTORS, default="local",
                    help="local (default): `airflow dags test --use-executor` with LocalExecutor and an execution API "
                         "server, so independent tasks run in parallel as in a deployment; in-process: plain "
                         "`airflow dags test`, one task at a time in one process (what `./cx demo` does)")
    ap.add_argument("--full-only", action="store_true",
                    help="only the full run, the floor and the DuckDB load per repetition (one data set; no "
                         "incremental, no-op or full-refresh check): e.g. `--scale L --repeat 1 --full-only`")
    ap.add_argument("--loader-standalone", action="store_true",
                    help="time the loader again outside Airflow for the loader/DuckDB figure (default: the full "
                         "run's load_raw task)")


def run_from_args(args) -> int:
    res = run_bench(scale=args.scale, seed=args.seed, repeat=args.repeat, memory_limit=args.memory_limit,
                    bench_home=args.home, out_dir=args.out, incremental_days=args.incremental_days, keep=args.keep,
                    e2e_full_refresh=args.e2e_full_refresh, loader_standalone=args.loader_standalone,
                    executor=args.executor, full_only=args.full_only)
    print(Path(res["files"][1]).read_text())
    print("bench: wrote " + ", ".join(res["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

