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

One DAG run, its Airflow homes and the execution API server are `cxw_tools.bench.dagrun`. Every process of a DAG run
(the `airflow` process and its children, including the dbt subprocess) is sampled with
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
import sys
import time
from pathlib import Path

from cxw.config import DBT_PROJECT_DIR, REPO_ROOT, paths
from cxw_tools.bench import BenchError
from cxw_tools.bench.dagrun import (_airflow_template, _fresh_airflow_home, _fresh_home, _home_env,
                                     _utc_epoch, dag_run, execution_api, reset_demo_server)
from cxw_tools.bench.floor import fingerprints, floor_plan, floor_script_text, prepare_floor_db
from cxw_tools.bench.report import EXECUTORS, _write, figures
from cxw_tools.bench.sampler import run_sampled

MEMORY_LIMIT_ENV = "CXW_DUCKDB_MEMORY_LIMIT"  # read by dbt_project/profiles.yml (duckdb settings.memory_limit)
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# data set C's GA4: a day's daily table lands 6 h after the day ended (as in the DECISIONLOG's hourly run), so at
# B+1h the day that ended at B is the export's streaming table `events_intraday_YYYYMMDD` (the demo company has no
# activity after the window end, so there is no later day; any value <= 1 h would show that day as a daily table and
# the hour would carry no intraday table at all)
HOURLY_GA4_INTRADAY_DELAY_H = 6.0


# ---------------------------------------------------------------------------------------------------------------
# Step 6 (the hourly run) and the full-refresh check; one measured DAG run is cxw_tools.bench.dagrun
# ---------------------------------------------------------------------------------------------------------------


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

