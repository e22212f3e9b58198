"""One DAG run of the benchmark under `airflow dags test`, measured (`dag_run`): the Airflow homes it runs in (one
migrated metadata template per bench, copied into each repetition: `_airflow_template`, `_fresh_home`,
`_fresh_airflow_home`), the execution API server LocalExecutor workers report to (`execution_api`), the demo source
server's reset between repetitions (`reset_demo_server`), and what a run's Airflow metadata and build database say
(task instances, rows per stage). The orchestration of the repetitions and steps is `cxw_tools.bench.harness`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from cxw.config import REPO_ROOT, paths
from cxw_tools.bench import BenchError
from cxw_tools.bench.sampler import Sampler, run_sampled

DAG_ID = "cx_pipeline"


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
