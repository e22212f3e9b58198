"""`./cx bench` / `make bench`: stage timings of the real DAG under Airflow, and ratios against a DuckDB floor.

    python -m cxw bench [--scale S|M|L] [--repeat 3] [--seed 42] [--memory-limit 4GB] [--home DIR] [--out DIR]

Per repetition, in a fresh CXW_HOME (its own project-local Airflow SQLite DB, copied from one migrated template):

1. full        `airflow dags test` on the demo company generated with as_of = window end − N days (default 2)
2. floor       the same transforms as ONE DuckDB script generated from dbt's manifest of run 1 (compiled SQL in
               topological order), run in a fresh database holding only the inputs (sources, seeds, snapshots)
3. loader      cxw.loader over the landed files of run 1 vs DuckDB's own `create table as select * from read_parquet`
4. incremental the DAG on the demo generated at the window end (≈1 % new data: new/late events, updates, reviews)
5. no-op       the same logical date again (nothing new)

Once at the end: a full refresh on the window-end data in another fresh home; its published tables must have the
same fingerprints (count + sum of row hashes, cxw.publish.table_fingerprint) as the incremental run's.

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
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from graphlib import TopologicalSorter
from pathlib import Path

from .config import DBT_PROJECT_DIR, REPO_ROOT, paths

DAG_ID = "cx_pipeline"
MEMORY_LIMIT_ENV = "CXW_DUCKDB_MEMORY_LIMIT"  # read by dbt_project/profiles.yml (duckdb settings.memory_limit)
PUBLISHED_SCHEMAS = ("core", "kpi", "cx")
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# (key in "figures", label, comparison, target) — the targets of the issue "Benchmarks".
TARGETS = [
    ("r1_dbt_efficiency", "dbt efficiency R1 = floor / dbt build", ">=", 0.8),
    ("pipeline_over_floor", "full pipeline (e2e) / floor", "<=", 2.5),
    ("incremental_over_full", "incremental run / full run (wall)", "<=", 0.15),
    ("noop_wall_s", "no-op run wall (s)", "<=", 15.0),
    ("loader_over_duckdb", "loader rows/s / DuckDB read_parquet CTAS rows/s", ">=", 0.8),
    ("validation_share", "validation share of the full run (wall; raw + marts gate)", "<=", 0.15),
]


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# The floor: one DuckDB script generated from dbt's manifest
# ---------------------------------------------------------------------------------------------------------------

def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def floor_plan(manifest: dict) -> dict:
    """Turn a dbt manifest (after `dbt build`/`run`/`compile`) into the floor script.

    Returns {"inputs": [(schema, table)], "models": [(unique_id, sql)], "tests": [(unique_id, sql)],
    "hooks": [...], "notes": [...]}. Relations are rewritten from dbt's three-part "db"."schema"."name" to
    "schema"."name" so the script runs in any database file. Ephemeral models are already inlined by dbt as CTEs.
    Sources, seeds and snapshots are inputs (copied, not computed): seeds are CSV reference data, snapshots are
    stateful history. Model pre/post-hooks run around their model (see _render_hook). Anything the floor cannot
    reproduce faithfully raises instead of being skipped silently.
    """
    nodes = manifest["nodes"]
    rel_map: dict[str, str] = {}
    inputs: list[tuple[str, str]] = []
    notes: list[str] = []
    for src in manifest.get("sources", {}).values():
        if src.get("relation_name"):
            rel_map[src["relation_name"]] = f"{_q(src['schema'])}.{_q(src['identifier'])}"
            inputs.append((src["schema"], src["identifier"]))
    models: dict[str, dict] = {}
    for uid, n in nodes.items():
        rt = n["resource_type"]
        if not n.get("config", {}).get("enabled", True):
            continue
        name = n.get("alias") or n["name"]
        if n.get("relation_name"):
            rel_map[n["relation_name"]] = f"{_q(n['schema'])}.{_q(name)}"
        if rt in ("seed", "snapshot"):
            inputs.append((n["schema"], name))
            notes.append(f"{rt} {uid} copied as an input")
        elif rt == "model":
            models[uid] = n
    hooks = []
    for uid, n in sorted(nodes.items()):
        if n["resource_type"] == "operation":
            code = n.get("compiled_code")
            if code is None:
                raise BenchError(f"{uid}: hook without compiled code in the manifest (run dbt build first)")
            hooks.append((uid, code))

    def rewrite(sql: str) -> str:
        # longest first, so no relation name is a prefix of another's replacement
        for rel in sorted(rel_map, key=len, reverse=True):
            sql = sql.replace(rel, rel_map[rel])
        return sql.strip().rstrip(";").strip()

    by_name = {n["name"]: f"{_q(n['schema'])}.{_q(n.get('alias') or n['name'])}" for n in nodes.values()
               if n["resource_type"] in ("model", "seed", "snapshot")}
    by_source = {(src["source_name"], src["name"]): f"{_q(src['schema'])}.{_q(src['identifier'])}"
                 for src in manifest.get("sources", {}).values() if "source_name" in src}

    ts = TopologicalSorter()
    for uid, n in sorted(models.items()):
        ts.add(uid, *sorted(d for d in n.get("depends_on", {}).get("nodes", []) if d in models))
    ordered = list(ts.static_order())
    out_models: list[tuple[str, str]] = []
    schemas: set[str] = set()
    for uid in ordered:
        n = models[uid]
        mat = n["config"].get("materialized")
        if mat == "ephemeral":
            continue
        if n.get("compiled_code") is None:
            raise BenchError(f"{uid}: no compiled code in the manifest (run `dbt build` or `dbt compile` first)")
        name = n.get("alias") or n["name"]
        sql = rewrite(n["compiled_code"])
        target = f"{_q(n['schema'])}.{_q(name)}"
        hooks_of = {h: [r for x in (n["config"].get(h) or [])
                        if (r := _render_hook(uid, x.get("sql") if isinstance(x, dict) else x, target, by_name,
                                              by_source))]
                    for h in ("pre-hook", "post-hook")}
        if mat == "incremental" and target in sql:
            raise BenchError(f"{uid}: compiled as an incremental step (reads {target}); the floor needs the "
                             "manifest of a full build (first run or --full-refresh)")
        if mat == "view":
            stmt = f"create or replace view {target} as\n{sql}"
        elif mat in ("table", "incremental"):
            stmt = f"create or replace table {target} as\n{sql}"
        else:
            raise BenchError(f"{uid}: materialization {mat!r} is not handled by the floor generator")
        schemas.add(n["schema"])
        out_models.append((uid, ";\n".join([*hooks_of["pre-hook"], stmt, *hooks_of["post-hook"]])))
    tests: list[tuple[str, str]] = []
    for uid, n in sorted(nodes.items()):
        if n["resource_type"] == "test" and n.get("config", {}).get("enabled", True) and n.get("compiled_code"):
            tests.append((uid, f"select count(*) from (\n{rewrite(n['compiled_code'])}\n) as dbt_internal_test"))
    unit_tests = len(manifest.get("unit_tests", {}) or {})
    if unit_tests:
        notes.append(f"{unit_tests} dbt unit tests (fixture-only) are in neither the floor nor the pipeline's build "
                     f"(they run in CI; CXW_DBT_UNIT_TESTS=1 adds them to the build)")
    schema_stmts = [f"create schema if not exists {_q(s)}" for s in sorted(schemas)]
    return {"inputs": sorted(set(inputs)), "schemas": schema_stmts, "hooks": hooks, "models": out_models,
            "tests": tests, "notes": notes}


_THIS = re.compile(r"\{\{\s*this\s*\}\}")
_INCREMENTAL_ONLY = re.compile(r"^\s*\{%-?\s*if\s+is_incremental\(\)\s*-?%\}(?:(?!\{%-?\s*(?:else|elif)\b).)*"
                               r"\{%-?\s*endif\s*-?%\}\s*$", re.S)
_REF = re.compile(r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
_SOURCE = re.compile(r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")


def _render_hook(uid: str, sql: str | None, target: str, by_name: dict, by_source: dict) -> str:
    """A model hook as the manifest stores it (unrendered): only {{ this }}, {{ ref('x') }} and
    {{ source('s', 't') }} are resolved; a hook wholly inside `{% if is_incremental() %}…{% endif %}` (no else) is
    dropped, as in the first build the floor reproduces; any other Jinja raises instead of running something else."""
    sql = sql or ""
    if _INCREMENTAL_ONLY.match(sql):
        return ""  # `{% if is_incremental() %}…{% endif %}`: renders to nothing in the full build the floor reproduces

    def ref(m):
        if m.group(1) not in by_name:
            raise BenchError(f"{uid}: hook refers to unknown model {m.group(1)!r}")
        return by_name[m.group(1)]

    def source(m):
        key = (m.group(1), m.group(2))
        if key not in by_source:
            raise BenchError(f"{uid}: hook refers to unknown source {key}")
        return by_source[key]

    out = _SOURCE.sub(source, _REF.sub(ref, _THIS.sub(target, sql))).strip().rstrip(";")
    if "{{" in out or "{%" in out:
        raise BenchError(f"{uid}: hook Jinja the floor generator cannot render: {sql[:200]}")
    return out


def floor_script_text(plan: dict) -> str:
    parts = ["-- generated by cxw.bench from dbt's manifest.json; do not edit\n"
             "-- needs _cxw.pii_salt (one row: the PII salt, never written here), which execute_floor creates"]
    parts += [s + ";" for s in plan["schemas"]]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["hooks"]]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["models"]]
    parts += ["-- ---- data tests (timed separately; each returns its failing-row count)"]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["tests"]]
    return "\n\n".join(parts) + "\n"


def _attach_src(con, source_db) -> None:
    """Attach the build database read-only as ``bench_src`` (the floor's linked inputs point there)."""
    con.execute(f"attach '{source_db}' as bench_src (read_only)")


def prepare_floor_db(source_db: Path, floor_db: Path, inputs: list[tuple[str, str]], link: bool = True) -> dict:
    """A fresh database holding only the floor's inputs, taken from the build database.

    ``link`` (default): each input is a view over the build database, attached read-only as ``bench_src`` when the
    floor runs (``execute_floor(attach=...)``); the floor reads the same DuckDB storage without a copy (a copy of
    the raw tables took ≈30 s per repetition at M). ``link=False`` copies every input into the floor file."""
    import duckdb

    for f in (floor_db, Path(str(floor_db) + ".wal")):
        f.unlink(missing_ok=True)
    floor_db.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect(str(floor_db))
    copied, missing = [], []
    try:
        _attach_src(con, source_db)
        have = {(s, t) for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'bench_src'").fetchall()}
        for schema, table in inputs:
            if (schema, table) not in have:
                missing.append(f"{schema}.{table}")
                continue
            con.execute(f"create schema if not exists {_q(schema)}")
            kind = "view" if link else "table"
            con.execute(f"create {kind} {_q(schema)}.{_q(table)} as select * from bench_src.{_q(schema)}.{_q(table)}")
            copied.append(f"{schema}.{table}")
        con.execute("detach bench_src")
        con.execute("checkpoint")
    finally:
        con.close()
    return {"copied": copied, "missing": missing, "seconds": round(time.perf_counter() - t0, 3),
            "attach": str(source_db) if link else None}


def execute_floor(db: Path, plan: dict, memory_limit: str | None = None, attach: str | None = None) -> dict:
    """Run the floor script with the duckdb Python API; models and data tests timed separately. ``attach``: the
    build database the input views of ``prepare_floor_db(link=True)`` read (attached read-only, not timed)."""
    import duckdb

    con = duckdb.connect(str(db))
    try:
        if memory_limit:
            con.execute(f"set memory_limit = '{memory_limit}'")
        if attach:
            _attach_src(con, attach)
        # the salt table hash_pii reads (the dbt-duckdb plugin writes it for dbt; cxw/dbt_pii_plugin.py), so the
        # floor's hashes equal the build's; not timed, like the attach
        from cxw.pii import pii_salt

        con.execute("create schema if not exists _cxw")
        con.execute("create or replace table _cxw.pii_salt as select ?::varchar as salt", [pii_salt()])
        t0 = time.perf_counter()
        for stmt in plan["schemas"]:
            con.execute(stmt)
        for _, sql in plan["hooks"]:
            con.execute(sql)
        per_model = {}
        for uid, sql in plan["models"]:
            t1 = time.perf_counter()
            con.execute(sql)
            per_model[uid] = round(time.perf_counter() - t1, 4)
        con.execute("checkpoint")
        models_s = time.perf_counter() - t0
        t2 = time.perf_counter()
        failing = {}
        for uid, sql in plan["tests"]:
            n = con.execute(sql).fetchone()[0]
            if n:
                failing[uid] = n
        tests_s = time.perf_counter() - t2
    finally:
        con.close()
    slowest = sorted(per_model.items(), key=lambda kv: -kv[1])[:5]
    return {"models_s": round(models_s, 3), "tests_s": round(tests_s, 3), "models": len(plan["models"]),
            "tests": len(plan["tests"]), "tests_with_failures": failing, "slowest_models": slowest}


def fingerprints(db: Path, schemas=PUBLISHED_SCHEMAS, tables: list[str] | None = None,
                 attach: str | None = None) -> dict[str, list]:
    """{schema.table: [count, sum of row hashes]} for every base table of `schemas` (or the given tables; views
    over a floor's linked inputs need ``attach``, see ``prepare_floor_db``)."""
    import duckdb

    from .publish import table_fingerprint

    con = duckdb.connect(str(db), read_only=True)
    try:
        if attach:
            _attach_src(con, attach)
        cat = con.execute("select current_database()").fetchone()[0]
        if tables is None:
            rows = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = ? "
                "and schema_name in (select unnest(?::varchar[])) order by 1, 2", [cat, list(schemas)]).fetchall()
            tables = [f"{s}.{t}" for s, t in rows]
        out = {}
        for qualified in tables:
            s, t = qualified.split(".", 1)
            out[qualified] = list(table_fingerprint(con, f"{_q(s)}.{_q(t)}"))
        return out
    finally:
        con.close()


def _floor_exec_main(argv: list[str]) -> int:
    """Subprocess entry (so the floor is sampled like the DAG): python -m cxw.bench floor-exec DB PLAN OUT [MEM]"""
    db, plan_file, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    mem = argv[3] if len(argv) > 3 and argv[3] else None
    plan = json.loads(plan_file.read_text())
    res = execute_floor(db, plan, mem, attach=plan.get("attach"))
    out.write_text(json.dumps(res, indent=1))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Process sampling
# ---------------------------------------------------------------------------------------------------------------

def _dir_bytes(d: Path) -> int:
    total = 0
    try:
        for root, _, files in os.walk(d):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_size
                except OSError:
                    pass
    except OSError:
        pass
    return total


_TASK_TITLE = re.compile(r"airflow worker -- (?:\S+: )?([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})")


def _task_owner(title: str) -> str | None:
    """The task-instance id (32 hex digits) a LocalExecutor process works for, from its process title: the
    supervisor is titled ``airflow worker -- LocalExecutor: <ti id>``, the task runner ``airflow worker -- <ti id>``."""
    m = _TASK_TITLE.search(title)
    return m.group(1).replace("-", "") if m else None


class Sampler(threading.Thread):
    """Samples process trees: per-interval CPU seconds (all processes), summed RSS, spill-directory bytes, and,
    where a process (or an ancestor) is titled by Airflow for a task instance, the same per task instance."""

    def __init__(self, pid: int, spill_dirs: list[Path], interval: float = 0.2, extra_pids: tuple[int, ...] = ()):
        super().__init__(daemon=True)
        import psutil

        self.roots = [psutil.Process(pid)] + [psutil.Process(x) for x in extra_pids]
        self.spill_dirs = spill_dirs
        self.interval = interval
        # t, cpu delta, rss sum, spill bytes, n procs, {ti id: [cpu delta, rss]}
        self.samples: list[tuple[float, float, int, int, int, dict]] = []
        self._cpu: dict[tuple[int, float], float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            t = time.time()
            procs = []
            for root in self.roots:
                try:
                    procs += [root] + root.children(recursive=True)
                except psutil.Error:
                    continue
            if not procs:
                break
            delta, rss, n = 0.0, 0, 0
            seen: dict[int, tuple[int, str | None, float, int]] = {}  # pid -> ppid, own title owner, cpu, rss
            for p in procs:
                try:
                    with p.oneshot():
                        ct = p.cpu_times()
                        key = (p.pid, p.create_time())
                        c = ct.user + ct.system
                        r = p.memory_info().rss
                        ppid = p.ppid()
                        owner = _task_owner(" ".join(p.cmdline()))
                except psutil.Error:
                    continue
                d = c - self._cpu.get(key, 0.0)
                self._cpu[key] = c
                delta += d
                rss += r
                n += 1
                seen[p.pid] = (ppid, owner, d, r)
            per_task: dict[str, list] = {}
            for pid, (ppid, owner, d, r) in seen.items():
                hops = 0
                while owner is None and ppid in seen and hops < 16:  # a task's children (dbt) belong to it
                    ppid, owner = seen[ppid][0], seen[ppid][1]
                    hops += 1
                if owner is not None:
                    acc = per_task.setdefault(owner, [0.0, 0])
                    acc[0] += d
                    acc[1] += r
            spill = sum(_dir_bytes(d) for d in self.spill_dirs)
            self.samples.append((t, delta, rss, spill, n, per_task))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def attribute(self, stages: dict[str, tuple[float, float]], ti_ids: dict[str, str] | None = None
                  ) -> dict[str, dict]:
        """CPU seconds, peak RSS and peak spill per stage.

        With ``ti_ids`` (task id -> task-instance id; tasks ran in executor processes): a stage gets the CPU and the
        peak summed RSS of its own processes (supervisor, task runner and their children); CPU of the other processes
        (the `dags test` loop, idle workers, the API server) goes to '(outside tasks)'. Without: tasks ran inside the
        sampled process one at a time, so a stage gets everything sampled between its start and end, and the
        peak summed RSS of all processes then. Spill is by time in both cases."""
        out: dict[str, dict] = {k: {"cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_spill_bytes": 0} for k in stages}
        out["(outside tasks)"] = {"cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_spill_bytes": 0}
        by_ti = {v: k for k, v in (ti_ids or {}).items() if k in out}
        for t, cpu, rss, spill, _, per_task in self.samples:
            mid = t - self.interval / 2
            hit = [k for k, (a, b) in stages.items() if a <= mid <= b] or ["(outside tasks)"]
            for k in hit:
                out[k]["peak_spill_bytes"] = max(out[k]["peak_spill_bytes"], spill)
            if ti_ids:
                owned = 0.0
                for ti, (c, r) in per_task.items():
                    k = by_ti.get(ti)
                    if k is None:
                        continue
                    owned += c
                    out[k]["cpu_s"] += c
                    out[k]["peak_rss_mb"] = max(out[k]["peak_rss_mb"], r / 2**20)
                out["(outside tasks)"]["cpu_s"] += cpu - owned
                continue
            for k in hit:
                o = out[k]
                o["cpu_s"] += cpu / len(hit)
                o["peak_rss_mb"] = max(o["peak_rss_mb"], rss / 2**20)
        for o in out.values():
            o["cpu_s"] = round(o["cpu_s"], 2)
            o["peak_rss_mb"] = round(o["peak_rss_mb"], 1)
        return out

    def totals(self) -> dict:
        return {"cpu_s_sampled": round(sum(s[1] for s in self.samples), 2),
                "peak_rss_mb": round(max((s[2] for s in self.samples), default=0) / 2**20, 1),
                "peak_spill_bytes": max((s[3] for s in self.samples), default=0),
                "max_processes": max((s[4] for s in self.samples), default=0), "samples": len(self.samples)}


def run_sampled(cmd: list[str], env: dict, log_file: Path, spill_dirs: list[Path], cwd=None,
                extra_pids: tuple[int, ...] = (), finished=None, grace_s: float = 20.0) -> dict:
    """Run ``cmd`` sampled. ``finished``: a callable that says whether the work is done; if the process is still
    there ``grace_s`` after that, its process group is terminated (``terminated_after_finish``). `airflow dags test
    --use-executor` can hang in LocalExecutor.end() after its run has finished: one worker never gets its poison
    pill (seen here about once in ten runs)."""
    import resource
    import signal

    log_file.parent.mkdir(parents=True, exist_ok=True)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    done_at, terminated = None, False
    with log_file.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd or REPO_ROOT,
                                start_new_session=finished is not None)
        sampler = Sampler(proc.pid, spill_dirs, extra_pids=extra_pids)
        sampler.start()
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if finished is None:
                    continue
                if done_at is None:
                    done_at = time.time() if finished() else None
                elif time.time() - done_at > grace_s:
                    terminated = True
                    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 30)):
                        try:
                            os.killpg(proc.pid, sig)
                        except ProcessLookupError:
                            pass
                        try:
                            proc.wait(wait_s)
                            break
                        except subprocess.TimeoutExpired:
                            continue
                    rc = proc.wait()
                    fh.write(f"\nbench: terminated `{' '.join(cmd[1:4])}` {grace_s:.0f} s after its run had finished "
                             f"(it did not exit by itself)\n")
                    break
        sampler.stop()
    t1 = time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": rc, "t0": t0, "t1": t1, "wall_s": round(t1 - t0, 3), "terminated_after_finish": terminated,
            "cpu_s_rusage": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2),
            "max_single_rss_mb_rusage": round(ru1.ru_maxrss / 1024, 1), "sampler": sampler}


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


def _read_run(airflow_db: Path, before: set[str] | None = None) -> tuple[dict, list[dict]]:
    """The newest DAG run (not one of the run ids in ``before``) and its task instances."""
    con = sqlite3.connect(str(airflow_db))
    con.row_factory = sqlite3.Row
    try:
        runs = con.execute("select run_id, logical_date, start_date, end_date, state from dag_run where dag_id = ? "
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


EXECUTORS = ("local", "in-process")
EXECUTOR_TEXT = {
    "local": "under LocalExecutor (`airflow dags test --use-executor` with an execution API server): independent "
             "tasks in parallel, as in a deployment; per-stage CPU and RSS are the task's own processes",
    "in-process": "one at a time inside `airflow dags test` (no executor); per-stage CPU and RSS are everything "
                  "sampled while the task ran",
}


@contextlib.contextmanager
def execution_api(env: dict, log_file: Path):
    """An `airflow api-server --apps execution` on a free loopback port, for LocalExecutor workers to report to
    (what a deployment's api-server does); yields (the variables `dags test --use-executor` needs, server pid).
    Started before the runs' clocks start, stopped after: in a deployment it is always up."""
    import secrets
    import socket
    import urllib.request

    from .demo import _bin

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
                        raise BenchError(f"the execution API server did not answer in 120 s; log: {log_file}")
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
    """Put a running demo source server (the ready-file ``info`` of :func:`cxw.demo.demo_server_info`) back in the
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
    from .demo import airflow_env

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
    from .demo import _bin, demo_server, source_env
    from .tasks import _safe

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
    from .dbt import dbt_env, kpi_window_vars

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
            "fingerprints": fingerprints(db), "kpi_window": kpi_window}


# ---------------------------------------------------------------------------------------------------------------
# Loader vs DuckDB's own Parquet load
# ---------------------------------------------------------------------------------------------------------------

def loader_vs_duckdb(raw_root: Path, work: Path, task: dict | None = None) -> dict:
    """DuckDB's own ``create table as select * from read_parquet([files], union_by_name)`` per source/entity over
    the landed files of ``raw_root``, against the loader's rate. ``task``: the full run's ``load_raw`` task (rows,
    wall_s): the loader as the pipeline ran it, Airflow task included. Without it the loader is run again here
    (``load_into_duckdb(force=True)`` into an empty file; ``--loader-standalone``)."""
    import duckdb

    from .loader import complete_loads, load_into_duckdb

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

def _generate(bench_home: Path, scale: str, seed: int, as_of: str) -> tuple[Path, dict]:
    import demo_company

    out = bench_home / "demo" / f"{scale}-{seed}-asof-{as_of}"
    mf = out / "manifest.json"
    if not mf.exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        print(f"bench: generating the demo company {scale} seed {seed} as of {as_of}", flush=True)
        demo_company.generate(tmp, scale=scale, seed=seed, as_of=as_of)
        os.replace(tmp, out)
        print(f"bench: generated in {time.perf_counter() - t0:.1f}s", flush=True)
    return out, json.loads(mf.read_text())


def _airflow_template(bench_home: Path) -> Path:
    from .demo import airflow_env, prepare_airflow

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

    from .config import DAGS_DIR, REPO_ROOT

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
    plan = floor_plan(json.loads(manifest_file.read_text()))
    (work / "floor.sql").write_text(floor_script_text(plan))
    db = work / "floor.duckdb"
    prep = prepare_floor_db(p_build, db, plan["inputs"])
    (work / "plan.json").write_text(json.dumps({**plan, "attach": prep["attach"]}))
    out = work / "result.json"
    res = run_sampled([sys.executable, "-m", "cxw.bench", "floor-exec", str(db), str(work / "plan.json"), str(out),
                       memory_limit or ""], dict(os.environ), work / "floor.log", [Path(str(db) + ".tmp")])
    sampler = res.pop("sampler")
    if res["returncode"] != 0:
        raise BenchError(f"floor script failed: {(work / 'floor.log').read_text()[-3000:]}")
    r = json.loads(out.read_text())
    fp_dbt = fingerprints(p_build)
    fp_floor = fingerprints(db, tables=list(fp_dbt))
    mismatch = sorted(k for k in fp_dbt if fp_dbt[k] != fp_floor.get(k))
    return {**r, "prep": prep, "process_wall_s": res["wall_s"], "cpu_s": res["cpu_s_rusage"],
            **{k: v for k, v in sampler.totals().items() if k in ("peak_rss_mb", "peak_spill_bytes")},
            "notes": plan["notes"], "script": str(work / "floor.sql"),
            "published_tables_compared": len(fp_dbt), "fingerprint_mismatches": mismatch}


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


def _median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 4) if xs else None


def run_bench(scale: str = "S", seed: int = 42, repeat: int = 3, memory_limit: str | None = None,
              bench_home: Path | None = None, out_dir: Path | None = None, incremental_days: int = 2,
              keep: bool = False, e2e_full_refresh: bool = False, loader_standalone: bool = False,
              executor: str = "local", full_only: bool = False) -> dict:
    """``full_only``: per repetition only the full run, the floor and the DuckDB load (one data set; no incremental,
    no-op or full-refresh check) — what scale L needs to show it finishes within its memory limit."""
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START

    import psutil

    from .demo import demo_server_info

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
            for srv in (srv_a, srv_b):
                if srv:
                    reset_demo_server(srv)
            url_a, url_b = srv_a["base_url"], srv_b and srv_b["base_url"]
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


WAREHOUSE_STAGES = ("load_raw", "validate_raw", "dbt_build", "validate", "publish")
STAGES = ("extract_odoo", "extract_hubspot", "extract_ga4", "extract_google_reviews", "extract_trustpilot",
          "load_odoo", "load_hubspot", "load_ga4", "load_google_reviews", "load_trustpilot",
          "load_raw", "validate_raw", "dbt_build", "validate", "publish", "export_alerts", "summarize")


def figures(result: dict) -> dict:
    reps = result["reps"]
    f: dict = {}

    def med(fn):
        vals = []
        for r in reps:
            try:
                v = fn(r)
            except (KeyError, TypeError, ZeroDivisionError):
                continue
            if v is not None:  # a skipped task has no rows / samples
                vals.append(v)
        return {"median": _median(vals), "min": min(vals) if vals else None, "max": max(vals) if vals else None,
                "n": len(vals)}

    f["full_e2e_s"] = med(lambda r: r["full"]["e2e_wall_s"])
    f["full_extract_span_s"] = med(lambda r: r["full"]["extract_span_s"])
    f["incremental_e2e_s"] = med(lambda r: r["incremental"]["e2e_wall_s"])
    f["noop_wall_s"] = med(lambda r: r["noop"]["e2e_wall_s"])
    f["dbt_build_s"] = med(lambda r: r["full"]["tasks"]["dbt_build"]["wall_s"])
    f["dbt_elapsed_s"] = med(lambda r: r["full"]["dbt_elapsed_s"])
    f["floor_models_s"] = med(lambda r: r["floor"]["models_s"])
    f["floor_tests_s"] = med(lambda r: r["floor"]["tests_s"])
    f["r1_dbt_efficiency"] = med(lambda r: round(r["floor"]["models_s"] / r["full"]["tasks"]["dbt_build"]["wall_s"], 4))
    f["r1_with_tests"] = med(lambda r: round((r["floor"]["models_s"] + r["floor"]["tests_s"])
                                             / r["full"]["tasks"]["dbt_build"]["wall_s"], 4))
    f["pipeline_over_floor"] = med(lambda r: round(r["full"]["e2e_wall_s"] / r["floor"]["models_s"], 3))
    # the same ratio without the extract tasks (vendor APIs and their rate limits are not transforms): land raw,
    # both gates, dbt and publish over the floor
    f["warehouse_stages_over_floor"] = med(lambda r: round(
        sum(r["full"]["tasks"][t]["wall_s"] for t in WAREHOUSE_STAGES) / r["floor"]["models_s"], 3))
    f["incremental_over_full"] = med(lambda r: round(r["incremental"]["e2e_wall_s"] / r["full"]["e2e_wall_s"], 4))
    f["loader_over_duckdb"] = med(lambda r: r["loader"]["ratio"])
    f["loader_rows_per_s"] = med(lambda r: r["loader"]["loader_rows_per_s"])
    f["duckdb_rows_per_s"] = med(lambda r: r["loader"]["native_rows_per_s"])
    f["load_raw_task_rows_per_s"] = med(lambda r: round(r["full"]["tasks"]["load_raw"]["rows"]
                                                        / r["full"]["tasks"]["load_raw"]["wall_s"]))
    # both gates: the raw gate (validate_raw) and the marts gate (validate)
    f["validation_share"] = med(lambda r: round((r["full"]["tasks"]["validate_raw"]["wall_s"]
                                                 + r["full"]["tasks"]["validate"]["wall_s"]) / r["full"]["e2e_wall_s"], 4))
    f["incremental_validation_share"] = med(lambda r: round((r["incremental"]["tasks"]["validate_raw"]["wall_s"]
                                                             + r["incremental"]["tasks"]["validate"]["wall_s"])
                                                            / r["incremental"]["e2e_wall_s"], 4))
    f["incremental_dbt_build_s"] = med(lambda r: r["incremental"]["tasks"]["dbt_build"]["wall_s"])
    f["noop_airflow_overhead_s"] = med(lambda r: r["noop"]["airflow_overhead_s"])
    f["airflow_overhead_s"] = med(lambda r: r["full"]["airflow_overhead_s"])
    f["full_cpu_s"] = med(lambda r: r["full"]["cpu_s"])
    f["full_peak_rss_mb"] = med(lambda r: r["full"]["peak_rss_mb"])
    f["dbt_peak_spill_bytes"] = med(lambda r: r["full"]["tasks"]["dbt_build"]["peak_spill_bytes"])
    f["floor_peak_spill_bytes"] = med(lambda r: r["floor"]["peak_spill_bytes"])
    for stage in STAGES:
        for kind in ("full", "incremental", "noop"):
            f[f"{kind}.{stage}.wall_s"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["wall_s"])
            f[f"{kind}.{stage}.cpu_s"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["cpu_s"])
            f[f"{kind}.{stage}.peak_rss_mb"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["peak_rss_mb"])
            f[f"{kind}.{stage}.rows"] = med(lambda r, s=stage, k=kind: r[k]["tasks"][s]["rows"])
    return f


def _write(result: dict, out_dir: Path, partial: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['started_at'][:10]}-{result['scale']}"
    result["partial"] = partial
    if result["reps"]:
        result["figures"] = figures(result)
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    if result["reps"]:
        (out_dir / f"{stem}.md").write_text(render_markdown(result))
    result["files"] = [str(out_dir / f"{stem}.json"), str(out_dir / f"{stem}.md")]
    return result


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render_markdown(r: dict) -> str:
    f = r["figures"]
    m = r["machine"]
    lines = [f"# Benchmark {r['started_at'][:10]} — scale {r['scale']} (seed {r['seed']})", "",
             *([f"**Partial result** ({len(r['reps'])} of {r['repeat']} repetitions"
                + (f"; stopped by: {r['error'][:300]}" if r.get("error") else "") + ").", ""]
               if r.get("partial") else []),
             f"{len(r['reps'])} repetition(s); medians (min–max). Machine: {m['cpus']} cores, {m['mem_gb']} GiB, "
             f"Python {m['python']}, DuckDB {m.get('duckdb')}; load average at start {_la(m['load_avg_start'])}, "
             f"at end {_la(m.get('load_avg_end'))}. DuckDB memory_limit for dbt: {r['memory_limit'] or 'default (80%)'}."
             f" Started {r['started_at']}, finished {r.get('finished_at')}."
             + (f" Speed probe (DuckDB 100M-row aggregate / 10M-step Python loop, s): start {_probe(m.get('speed_probe_start'))},"
                f" end {_probe(m.get('speed_probe_end'))}." if m.get("speed_probe_start") else "")
             + f" Tasks ran {EXECUTOR_TEXT.get(r.get('executor') or 'in-process')}.", "",
             "| figure | measured (median) | min–max | target | met |", "|---|---|---|---|---|"]
    for key, label, op, target in TARGETS:
        v = f[key]
        ok = None if v["median"] is None else (v["median"] >= target if op == ">=" else v["median"] <= target)
        lines.append(f"| {label} | {_fmt(v['median'])} | {_fmt(v['min'])}–{_fmt(v['max'])} | {op} {target} | "
                     f"{'–' if ok is None else ('yes' if ok else 'NO')} |")
    if r["scale"] != "L":
        oom, met = "not measured (only at scale L)", "–"
    elif r.get("partial"):
        oom, met = f"did not finish: {(r.get('error') or 'partial')[:120]}", "NO"
    else:
        oom, met = f"finished; dbt peak spill {_fmt(f['dbt_peak_spill_bytes']['median'])} bytes", "yes"
    lines.append(f"| no OOM at L (memory_limit {r['memory_limit']}) | {oom} | | finishes | {met} |")
    lines += ["", "| figure | median | min–max |", "|---|---|---|"]
    for key in ("warehouse_stages_over_floor", "full_e2e_s", "full_extract_span_s", "incremental_e2e_s", "noop_wall_s", "dbt_build_s",
                "dbt_elapsed_s", "floor_models_s", "floor_tests_s", "r1_with_tests", "loader_rows_per_s", "duckdb_rows_per_s", "load_raw_task_rows_per_s",
                "incremental_dbt_build_s", "incremental_validation_share", "airflow_overhead_s",
                "noop_airflow_overhead_s", "full_cpu_s", "full_peak_rss_mb", "dbt_peak_spill_bytes",
                "floor_peak_spill_bytes"):
        v = f[key]
        lines.append(f"| {key} | {_fmt(v['median'])} | {_fmt(v['min'])}–{_fmt(v['max'])} |")
    lines += ["", "Per stage (median wall s / CPU s / peak summed RSS MB / rows):", "",
              "| stage | full | incremental | no-op |", "|---|---|---|---|"]
    for stage in STAGES:
        cells = []
        for kind in ("full", "incremental", "noop"):
            g = lambda x: f[f"{kind}.{stage}.{x}"]["median"]  # noqa: E731
            cells.append(f"{_fmt(g('wall_s'))} / {_fmt(g('cpu_s'))} / {_fmt(g('peak_rss_mb'))} / {_fmt(g('rows'))}")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    fr = r.get("full_refresh") or {}
    checks = [f"- incremental marts = full refresh (fingerprints of {fr.get('tables_compared')} published tables): "
              + ("not run" if not fr else "equal" if not fr.get("mismatches_vs_incremental") else
                 f"DIFFER: {fr.get('mismatches_vs_incremental')}"),
              f"- full refresh ({fr.get('kind', 'DAG run')}): "
              + (f"dbt build --full-refresh {_fmt(fr.get('wall_s'))} s" if "wall_s" in fr else
                 f"e2e {_fmt(fr.get('e2e_wall_s'))} s, dbt_build "
                 f"{_fmt(((fr.get('tasks') or {}).get('dbt_build') or {}).get('wall_s'))} s")]
    if r.get("full_only"):
        checks = ["- `--full-only`: one full run, its floor and the DuckDB load per repetition; no incremental or "
                  "no-op run and no full-refresh check"]
    for rep in r["reps"]:
        fl = rep["floor"]
        checks.append(f"- rep {rep['rep']}: floor = dbt on {fl['published_tables_compared']} published tables: "
                      + ("equal" if not fl["fingerprint_mismatches"] else f"DIFFER: {fl['fingerprint_mismatches']}")
                      + ("" if "noop" not in rep else
                         f"; no-op run changed tables: {rep['noop_changed_tables'] or 'none'}"
                         f"; no-op run skipped the build: {'yes' if rep['noop'].get('dbt_skipped') else 'NO'}"))
    notes = sorted({n for rep in r["reps"] for n in rep["floor"]["notes"] if not n.startswith(("seed", "snapshot"))})
    inputs = sorted({n.split()[0] for rep in r["reps"] for n in rep["floor"]["notes"]
                     if n.startswith(("seed", "snapshot"))})
    lines += ["", "Checks:", ""] + checks + [
        "", "Notes: timings on a shared machine are noisy; see bench/README.md for what each figure means. "
        f"Floor inputs besides sources: {', '.join(inputs) or 'none'} "
        f"({'read from the build database' if r['reps'] and r['reps'][0]['floor']['prep'].get('attach') else 'copied'}). " + " ".join(notes)]
    return "\n".join(lines) + "\n"


def _probe(p) -> str:
    return "–" if not p else f"{p['duckdb_s']:.2f} / {p['python_s']:.2f}"


def _la(v) -> str:
    return "–" if not v else "/".join(f"{x:.1f}" for x in v)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "floor-exec":
        return _floor_exec_main(argv[1:])
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
