"""`./cx demo`: generate the demo company, serve its APIs on loopback, run the real DAG with `airflow dags test`.

Everything lands under CXW_HOME (default ./var). The Airflow metadata DB is a project-local SQLite file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

# Airflow's local home (metadata DB, pool, serialized DAGs) is shared with `./cx run`: cxw_tools/airflow_local.py
from cxw_tools.airflow_local import _bin, airflow, airflow_env, prepare_airflow  # noqa: F401  (re-exported)
from cxw.config import REPO_ROOT, paths

DAG_ID = "cx_pipeline"


def demo_dir(scale: str, seed: int, shape: dict | None = None) -> Path:
    """`<scale>-<seed>`, plus the non-default shape options (`XS-42-start2018-01-01-days3300-ga4days60`), so a
    company of another shape never reuses a cached one."""
    suffix = "".join(f"-{k.replace('_', '')}{v}" for k, v in sorted((shape or {}).items()) if v is not None)
    return paths().demo / f"{scale}-{seed}{suffix}"


def ensure_demo(scale: str, seed: int, force: bool = False, inject_fault: str | None = None,
                shape: dict | None = None) -> tuple[Path, dict]:
    """The generated company (cached by scale, seed and shape). `shape`: generator options start (ISO date),
    days, as_of (ISO date/datetime) and ga4_days (demo_company.generate); None values keep the defaults."""

    shape = {k: v for k, v in (shape or {}).items() if v is not None}
    out = demo_dir(scale, seed, shape)
    if inject_fault:
        out = out.with_name(f"{out.name}-fault-{inject_fault}")
    manifest_file = out / "manifest.json"
    if force and out.exists():
        shutil.rmtree(out)
    if not manifest_file.exists():
        t0 = time.perf_counter()
        print(f"cx: generating the demo company (scale {scale}, seed {seed}) into {out}", flush=True)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate_demo(tmp, scale, seed, inject_fault=inject_fault, **shape)
        os.replace(tmp, out)
        print(f"cx: generated in {time.perf_counter() - t0:.1f}s", flush=True)
    return out, json.loads(manifest_file.read_text())


def generate_demo(out: Path, scale: str, seed: int, as_of: str | None = None,
                  inject_fault: str | None = None, **shape) -> dict:
    """(Re)generate the demo company into ``out`` as every system shows it at ``as_of`` (default: the window end)
    and return its manifest. Regenerating the same directory at a later ``as_of`` is how the world moves on between
    two extractions (orders confirmed or cancelled, tickets replied, reviews edited, late GA4 rows): the files are
    replaced in place, as a vendor's API would answer later; the demo server must be (re)started to serve them."""
    import demo_company

    return demo_company.generate(out, scale=scale, seed=seed, as_of=as_of, inject_fault=inject_fault, **shape)


@contextmanager
def demo_server(data_dir: Path):
    """The demo vendor APIs serving ``data_dir`` in a subprocess on a free loopback port; yields the base URL."""
    with demo_server_info(data_dir) as info:
        yield info["base_url"]


@contextmanager
def demo_server_info(data_dir: Path):
    """As :func:`demo_server`, yielding the server's ready file: ``{base_url, pid, admin_token}``."""
    ready = data_dir.parent / f".server-{os.getpid()}.json"
    ready.unlink(missing_ok=True)
    log = paths().runs / "demo-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "demo_company.server", "--data", str(data_dir),
                                 "--port", "0", "--ready-file", str(ready)], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO_ROOT)
        try:
            deadline = time.time() + 120
            while not ready.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"demo server exited ({proc.returncode}); see {log}")
                if time.time() > deadline:
                    raise RuntimeError(f"demo server not ready after 120 s; see {log}")
                time.sleep(0.1)
            yield json.loads(ready.read_text())
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            ready.unlink(missing_ok=True)


def source_env(data_dir: Path, manifest: dict, base_url: str) -> dict[str, str]:
    """The CXW_* variables that point the extractors at the demo company (as a customer would at real vendors)."""
    g, h, t = manifest["google"], manifest["hubspot"], manifest["trustpilot"]
    erp = manifest.get("erp") or {"schema": "odoo17", "file": "odoo/odoo.sqlite"}
    # a company generated with erp_schema "webshop" keeps its ERP in another schema: read it with that mapping
    mapping = {} if erp["schema"] == "odoo17" else {
        "CXW_ODOO_MAPPING": str(REPO_ROOT / "extractors" / "odoo" / "mappings" / f"{erp['schema']}.yml")}
    return {
        "CXW_HISTORY_START": manifest["window"]["start"],
        "CXW_ODOO_URL": f"sqlite:///{data_dir / erp['file']}",
        **mapping,
        "CXW_HUBSPOT_BASE_URL": base_url,
        "CXW_HUBSPOT_TOKEN": h["token"],
        # the demo portal is on a Professional tier (190 requests / 10 s per private app): stay just below it
        "CXW_HUBSPOT_RATE_LIMIT": "180/10s",
        "CXW_GA4_EXPORT_URL": str(data_dir / "ga4"),
        "CXW_GOOGLE_BASE_URL": base_url,
        "CXW_GOOGLE_TOKEN": g["token"],
        "CXW_GOOGLE_ACCOUNT_ID": str(g["account_id"]),
        "CXW_GOOGLE_LOCATION_IDS": ",".join(str(x) for x in g["location_ids"]),
        "CXW_TRUSTPILOT_BASE_URL": base_url,
        "CXW_TRUSTPILOT_API_KEY": t["api_key"],
        "CXW_TRUSTPILOT_API_SECRET": t["api_secret"],
        "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS": ",".join(t["business_unit_ids"]),
    }


def logical_date_for(manifest: dict) -> str:
    """The run whose data interval ends at the demo's 'now' (its window end, midnight UTC)."""
    end = date.fromisoformat(manifest.get("as_of", manifest["window"]["end"])[:10])
    return end.isoformat()


def run_dag(data_dir: Path, manifest: dict, logical_date: str | None = None, env: dict | None = None,
            echo: bool = False, log_name: str = "airflow-dags-test") -> dict:
    """Serve ``data_dir`` on loopback and run `airflow dags test cx_pipeline <logical_date>` against it, with the
    sources configured as a customer would (:func:`source_env`). ``logical_date`` defaults to the demo's 'now'
    (:func:`logical_date_for`). Airflow must be prepared (:func:`prepare_airflow`). Returns
    ``{logical_date, state, returncode, log, dag_seconds, run_started}``; `state` is read from the metadata DB."""
    p = paths()
    env = dict(env or airflow_env())
    logical_date = logical_date or logical_date_for(manifest)
    log_file = p.runs / f"{log_name}.log"
    with demo_server(data_dir) as base_url:
        env.update(source_env(data_dir, manifest, base_url))
        print(f"cx: demo sources up at {base_url}; running `airflow dags test {DAG_ID} {logical_date}`", flush=True)
        started = time.time()
        t1 = time.perf_counter()
        proc = airflow("dags", "test", DAG_ID, logical_date, env=env, check=False, log_file=log_file, echo=echo)
        dag_secs = time.perf_counter() - t1
    return {"logical_date": logical_date, "state": run_state(logical_date, env), "returncode": proc.returncode,
            "log": str(log_file), "dag_seconds": dag_secs, "run_started": started}


def run_demo(scale: str = "S", seed: int = 42, fresh: bool = False, echo: bool = False,
             inject_fault: str | None = None, shape: dict | None = None) -> dict:
    """`shape`: the generator's start / days / as_of / ga4_days (see ensure_demo); the DAG runs the day whose data
    interval ends at the company's as-of."""
    if inject_fault:
        return run_fault_demo(scale, seed, inject_fault, echo=echo, shape=shape)
    t0 = time.perf_counter()
    p = paths()
    if fresh:
        for d in (p.raw, p.state, p.deadletter, p.warehouse_dir):
            shutil.rmtree(d, ignore_errors=True)
    data_dir, manifest = ensure_demo(scale, seed, shape=shape)
    env = airflow_env()
    print("cx: preparing Airflow (metadata DB, pool, DAG serialization)", flush=True)
    prepare_airflow(env)
    run = run_dag(data_dir, manifest, env=env, echo=echo)
    log_file, dag_secs, state = Path(run["log"]), run["dag_seconds"], run["state"]
    summary_file = p.runs / "latest-summary.txt"
    if run["returncode"] != 0 or state != "success":
        print(log_file.read_text()[-6000:])
        if summary_file.exists() and summary_file.stat().st_mtime >= run["run_started"] - 5:
            print(summary_file.read_text())
        raise SystemExit(f"cx: the DAG run failed (state {state}); full log: {log_file}")
    print(summary_file.read_text() if summary_file.exists() else "(no summary written)")
    total = time.perf_counter() - t0
    print(f"cx: demo finished in {total:.0f}s (DAG run {dag_secs:.0f}s); Airflow log: {log_file}", flush=True)
    from cxw_dashboard.auth import ensure_demo_users, users_file

    password = ensure_demo_users()  # one user per audience (access/audiences.yml), a random password, hashed
    signin = (f"sign in as executive, cx_agent, analyst or admin with password {password}" if password else
              f"sign in with a user of {users_file()}")
    print(f"cx: open the dashboard with: ./cx dashboard   (http://127.0.0.1:8050/; {signin}; each audience reads "
          f"its own file under {p.published_dir / 'audiences'}; the whole file without sign-in: ./cx dashboard "
          f"--published {p.published_db})", flush=True)
    return {"seconds": total, "dag_seconds": dag_secs, "log": str(log_file)}


def _sha256(path: Path) -> str | None:
    import hashlib

    if not path.exists():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_fault_demo(scale: str, seed: int, fault: str, echo: bool = False, shape: dict | None = None) -> dict:
    """`./cx demo --inject-fault gate`: with a good generation published (a clean demo run first if there is none),
    the sources deliver broken data (demo_company/faults.py); the DAG runs again and the gate must block: the run
    fails, BI keeps the previous generation (same checksum), and the failed check is printed."""
    t0 = time.perf_counter()
    p = paths()
    if not p.published_db.exists():
        print("cx: nothing published yet — running the clean demo first, so there is a generation to protect",
              flush=True)
        run_demo(scale, seed, echo=echo, shape=shape)
    before = _sha256(p.published_db)
    from cxw.publish import current_generation

    gen_before = current_generation()
    data_dir, manifest = ensure_demo(scale, seed, force=True, inject_fault=fault, shape=shape)
    print(f"cx: injected fault {fault!r}: {manifest['fault']['what']} ({manifest['fault']['file']}: "
          f"{manifest['fault']['rows_before']} → {manifest['fault']['rows_after']} rows)", flush=True)
    env = airflow_env()
    prepare_airflow(env)
    print("cx: running the DAG on the faulty sources", flush=True)
    try:
        run = run_dag(data_dir, manifest, env=env, echo=echo, log_name="airflow-dags-test-fault")
    finally:
        # housekeeping (issue 17.6): the faulty company served its one run; its raw loads, the run's summary and
        # Data Docs stay, the generated copy (a whole company, GA4 included) does not pile up under $CXW_HOME/demo
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"cx: removed the fault demo's company {data_dir}", flush=True)
    state, log_file = run["state"], run["log"]
    after = _sha256(p.published_db)
    summary_file = p.runs / "latest-summary.txt"
    if summary_file.exists():
        print(summary_file.read_text())
    reason = _gate_reason(p.runs)
    unchanged = before == after and current_generation() == gen_before
    print(f"cx: DAG run state: {state}", flush=True)
    print(f"cx: gate verdict: {reason or 'no failed check found'}", flush=True)
    print(f"cx: published file {p.published_db}: checksum {'UNCHANGED' if unchanged else 'CHANGED'} "
          f"(sha256 {str(after)[:16]}…, generation {current_generation()})", flush=True)
    if state == "success" or not unchanged or not reason:
        raise SystemExit(f"cx: the gate did NOT block the injected fault {fault!r} (state {state}, checksum "
                         f"{'unchanged' if unchanged else 'changed'}); log: {log_file}")
    print(f"cx: fault demo finished in {time.perf_counter() - t0:.0f}s — bad data was blocked, BI still reads "
          f"generation {gen_before}", flush=True)
    return {"state": state, "reason": reason, "checksum_unchanged": unchanged, "generation": gen_before}


def _gate_reason(runs: Path) -> str | None:
    """The failed checks of the most recent gate report that failed."""
    reports = sorted(list(runs.glob("*/validation_raw.json")) + list(runs.glob("*/validation.json")),
                     key=lambda f: f.stat().st_mtime)
    for f in reversed(reports):
        rep = json.loads(f.read_text())
        if rep.get("status") == "failed":
            return "; ".join(rep.get("failed_checks", [])[:3]) + f" (Data Docs: {rep.get('data_docs')})"
        return None
    return None


def sqlite_run_state(metadata_db: Path, logical_date: str, dag_id: str = DAG_ID) -> str:
    """The state of the latest run of ``dag_id`` for the day of ``logical_date`` in an Airflow SQLite metadata DB
    (read-only); 'unknown' when there is none."""
    import sqlite3

    con = sqlite3.connect(f"file:{metadata_db}?mode=ro", uri=True)
    try:
        row = con.execute("select state from dag_run where dag_id = ? and substr(logical_date, 1, 10) = ? "
                          "order by coalesce(run_after, start_date) desc, id desc limit 1",
                          [dag_id, logical_date[:10]]).fetchone()
    finally:
        con.close()
    return str(row[0]) if row else "unknown"


def run_state(logical_date: str, env: dict | None = None) -> str:
    """The final state of the DAG run for `logical_date`, read from the metadata DB (`dags test` may exit 0 when a
    task failed). The project-local SQLite metadata DB (:func:`airflow_env`) is read directly: `airflow dags
    list-runs` costs an Airflow start-up, 3-5 CPU-s, per run (issue 16.8); any other metadata DB through that CLI."""
    want = date.fromisoformat(logical_date[:10]).isoformat()
    conn = (env or airflow_env()).get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if conn.startswith("sqlite:///") and Path(conn[len("sqlite:///"):]).exists():
        return sqlite_run_state(Path(conn[len("sqlite:///"):]), want)
    proc = airflow("dags", "list-runs", DAG_ID, "-o", "json", env=env, check=False)
    runs = []
    for line in proc.stdout.splitlines():
        if line.startswith("[{") or line.strip() == "[]":
            runs = json.loads(line)
    mine = [r for r in runs if str(r.get("logical_date") or "")[:10] == want]
    if not mine:
        return "unknown"
    latest = max(mine, key=lambda r: str(r.get("run_after") or r.get("start_date") or ""))
    return str(latest.get("state"))


if __name__ == "__main__":  # pragma: no cover
    run_demo()
