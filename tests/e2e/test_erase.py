"""`./cx erase` (issue 15.6) on a real pipeline state: the demo company at scale XS through the real DAG (`airflow dags
test`; one run: a private copy of the session's shared `cxw demo --scale XS --seed 42`, `clean_demo` in
tests/conftest.py), then `python -m cxw_tools erase --email` for a person the identity graph merged from two
Odoo partners (the same e-mail, once in capitals) and a HubSpot contact, with orders, web sessions and a detractor
alert that was exported. Afterwards no file under CXW_HOME — raw Parquet, the build database, every kept generation
and the BI file, snapshots, dead letters, alert exports, run artefacts, dbt logs, Airflow's home — holds the
person's e-mail, phone, name, salted e-mail hash or person id, in bytes or in any table row / Parquet row; every
other person's rows are unchanged; the ledger and the loader stay consistent, and the next run has nothing to do.

`demo/` is left out of the search: it is the demo company's source systems (the ERP's SQLite file, the CRM's
served JSON), which erasure in the warehouse does not touch (docs/contracts.md section 6)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def traces(home: Path, needles: list[str], skip: tuple[str, ...] = ("demo",)) -> list[tuple[str, str, str]]:
    """(file, needle, where) for every occurrence of a needle (case-insensitive) under home: in the file's bytes,
    in any row of a Parquet file, in any row of any table of a DuckDB file (compressed storage hides bytes)."""
    found = []
    low = sorted({n.lower() for n in needles})
    parquet = []
    for f in sorted(home.rglob("*")):
        rel = f.relative_to(home)
        if not f.is_file() or rel.parts[0] in skip:
            continue
        data = f.read_bytes().lower()
        found += [(str(rel), n, "bytes") for n in low if n.encode() in data]
        if f.suffix == ".parquet":
            parquet.append(f)
        elif f.suffix == ".duckdb" and not f.name.startswith("."):
            con = duckdb.connect(str(f), read_only=True)
            try:
                for cat, s, t in con.execute("select table_catalog, table_schema, table_name "
                                             "from information_schema.tables").fetchall():
                    hits = con.execute(
                        "select distinct unnest(list_filter($1::varchar[], lambda n: "
                        f'contains(lower(cast(x as varchar)), n))) from "{cat}"."{s}"."{t}" as x', [low]).fetchall()
                    found += [(str(rel), h, f"{s}.{t}") for h, in hits]
            finally:
                con.close()
    con = duckdb.connect(":memory:")
    try:
        for f in parquet:
            hits = con.execute("select distinct unnest(list_filter($1::varchar[], lambda n: contains(lower(cast(x as "
                               "varchar)), n))) from read_parquet($2) as x", [low, str(f)]).fetchall()
            found += [(str(f.relative_to(home)), h, "parquet row") for h, in hits]
    finally:
        con.close()
    return found


def _con(path: Path):
    return duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})


def _rows(path: Path, sql: str, params=None):
    con = _con(path)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _person_tables(db: Path) -> list[str]:
    return [f"{s}.{t}" for s, t in _rows(db, "select table_schema, table_name from information_schema.columns "
                                             "where column_name = 'person_sk' and table_schema in ('core', 'cx') "
                                             "order by 1, 2")]


@pytest.fixture(scope="module")
def erased(tmp_path_factory, clean_demo_copy):
    from cxw.config import paths
    from cxw_tools.demo import airflow_env, logical_date_for
    from extractors.common.deadletter import DeadLetterStore
    from tests.conftest import CLEAN_DEMO_UNSET, dag_run_state

    # the session's shared `cxw demo --scale XS --seed 42` (one real DAG run, tests/conftest.py), copied: erase
    # changes this home
    home = clean_demo_copy(tmp_path_factory.mktemp("cxw_erase") / "home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_HOME", str(home))
    for k in CLEAN_DEMO_UNSET:
        mp.delenv(k, raising=False)
    try:
        data = home / "demo" / "XS-42"
        manifest = json.loads((data / "manifest.json").read_text())
        env = airflow_env()
        logical_date = logical_date_for(manifest)
        log = paths().runs / "airflow-dags-test.log"
        state = dag_run_state(env["AIRFLOW_HOME"], logical_date)
        assert state == "success", log.read_text()[-6000:]
        p = paths()
        build, bi = p.build_db, p.published_db
        # the person: two Odoo partners and one HubSpot contact merged by e-mail, with an exported alert
        pid = _rows(build, """
            select l.person_id from intermediate.int_identity_links l
            group by 1
            having count(*) filter (where source = 'odoo') >= 2 and count(*) filter (where source = 'hubspot') >= 1
               and count(*) filter (where source = 'ga4') >= 1
            order by (select count(*) from cx.cx_detractor_alerts a where a.person_sk = l.person_id) desc, 1
            limit 1""")[0][0]
        partners = [int(r[0]) for r in _rows(build, "select source_id from intermediate.int_identity_links "
                                                    "where person_id = ? and source = 'odoo' order by 1", [pid])]
        contact = _rows(build, "select source_id from intermediate.int_identity_links where person_id = ? "
                               "and source = 'hubspot'", [pid])[0][0]
        email, phone, name = _rows(build, "select email, phone, name from raw_odoo.res_partner where id = ?",
                                   [partners[0]])[0]
        try:  # on code without erasure the CLI below fails, and every test with it
            from cxw.erase_person import resolve

            by = {k: resolve(p.raw, **{k: v}) for k, v in (("email", email.upper()), ("erp_id", partners[-1]),
                                                             ("crm_id", contact))}
        except ImportError:
            by = None
        email_hash = hashlib.sha256(f"demo-salt-not-secret|{email.strip().lower()}".encode()).hexdigest()
        # a dead letter mentioning the person, as the HubSpot extractor writes for a page it cannot parse, and one
        # that does not (it must stay as it is)
        load_id = sorted(x.parent.name for x in p.raw.glob("hubspot/contacts/*/_load.json"))[0]
        store = DeadLetterStore(p.deadletter, "hubspot", load_id)
        theirs = Path(store.write("unparseable page", method="GET", url=f"http://crm/contacts?email={email}",
                                  status=200, payload=json.dumps({"email": email, "phone": phone, "name": name})))
        other = Path(store.write("unparseable page", method="GET", url="http://crm/contacts?after=7", status=200,
                                 payload='{"email": "someone.else@example.org"'))
        other_bytes = other.read_bytes()
        needles = [email, phone, name, email_hash, pid]
        before = {
            "traces": traces(home, needles),
            "tables": {t: _rows(bi, f"select * from {t} where person_sk <> ? order by all", [pid])
                       for t in _person_tables(bi)},
            "their_orders": _rows(bi, "select count(*) from core.fct_orders where person_sk = ?", [pid])[0][0],
            "kpi": dict(_rows(bi, "select kpi, value from kpi.kpi_period where grain = 'window' and channel = 'all' "
                                  "and segment = 'all' and kpi in ('orders', 'review_rating_avg')")),
            "snapshot": _rows(build, "select partner_id, count(*) from intermediate.snap_odoo__res_partners "
                                     "group by 1 order by 1"),
            "alerts": _rows(bi, "select alert_id from cx.cx_detractor_alerts where person_sk = ?", [pid]),
            "generation": _rows(bi, "select generation_id from publication")[0][0],
            "kpi_window": json.loads((p.state / "_pipeline" / "published_build.json").read_text())
            .get("kpi_window"),
        }
        from cxw.analytics import reuse

        con = _con(build)
        try:
            analyzed_before = reuse.read(con)  # the record of the analyses the demo run computed
        finally:
            con.close()
        env_erase = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        proc = subprocess.run([sys.executable, "-m", "cxw_tools", "erase", "--email", f"  {email.upper()} "], cwd=REPO,
                              env=env_erase, capture_output=True, text=True)
        con = _con(build)
        try:
            analyzed_after = reuse.read(con)
        finally:
            con.close()
        yield {"home": home, "p": p, "proc": proc, "analyzed": (analyzed_before, analyzed_after), "pid": pid, "partners": partners, "contact": contact,
               "email": email, "phone": phone, "name": name, "email_hash": email_hash, "needles": needles,
               "before": before, "by": by, "dead": (theirs, other, other_bytes)}
    finally:
        mp.undo()


def test_erase_resolves_one_person_by_email_crm_id_or_erp_id(erased):
    by = erased["by"]
    assert by is not None, "no cxw.erase"
    for k, person in by.items():
        assert person.partner_ids == set(erased["partners"]), k
        assert person.contact_ids == {erased["contact"]}, k
    assert len(erased["partners"]) >= 2


def test_erase_leaves_no_trace_of_the_person_in_any_file(erased):
    proc = erased["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    home, needles = erased["home"], erased["needles"]
    # the search finds each of them before the erasure (in raw files and in the build database at least)
    before = erased["before"]["traces"]
    for n in needles:
        where = {f.split("/")[0] for f, h, _ in before if h == n.lower()}
        # plaintext is in raw files and raw tables; the hash and the person id in the marts and generations
        want = {"warehouse", "published"} if n in (erased["email_hash"], erased["pid"]) else {"raw", "warehouse"}
        assert want <= where, (n, where)
    assert any(f.startswith("published/") for f, _, _ in before)
    assert any(f.startswith("deadletter/") for f, _, _ in before)
    assert any(f.startswith("alerts/") for f, _, _ in before) == bool(erased["before"]["alerts"])
    left = traces(home, needles)
    assert left == [], left[:20]
    assert erased["email"] not in proc.stdout + proc.stderr


def test_erase_removes_the_analyses_record_so_the_next_run_refits_without_the_person(erased):
    # CXW_ANALYZE_EVERY=day keeps the analyses' tables while their record matches (cxw/analytics/reuse.py): the
    # erasure, through the real CLI, must remove it, or an hourly day would keep the person's CLV and topics
    assert erased["proc"].returncode == 0, erased["proc"].stdout[-3000:] + erased["proc"].stderr[-3000:]
    before, after = erased["analyzed"]
    assert before is not None, "the demo run left no analyses record: this test could not fail"
    assert after is None, f"the erasure left the analyses' record {after}"


def test_erase_writes_an_audit_record_without_personal_data(erased):
    p = erased["p"]
    lines = (p.state / "_erasure" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["subject"].startswith("email:") and len(rec["subject"]) == len("email:") + 64
    assert rec["counts"]["partners"] == len(erased["partners"]) and rec["counts"]["contacts"] == 1
    assert rec["counts"]["raw_rows"]["odoo.res_partner"] == len(erased["partners"])
    assert rec["counts"]["raw_rows"]["hubspot.contacts"] == 1
    assert rec["counts"]["raw_rows"]["ga4.events"] > 0 and rec["counts"]["snapshot_rows"] >= len(erased["partners"])
    assert rec["counts"]["dead_letters"] == 1
    low = lines[0].lower()
    assert not any(n.lower() in low for n in erased["needles"])
    # the subject can be checked by whoever holds the salt, and it is no hash the warehouse holds
    from cxw.erase_person import subject_hash

    assert rec["subject"] == "email:" + subject_hash("email", erased["email"].strip().lower())


def test_raw_files_still_reconcile_and_nothing_is_loaded_twice(erased):
    from cxw import buildstate
    from cxw.loader import complete_loads, load_into_duckdb

    p = erased["p"]
    rewritten = 0
    for ld in complete_loads(p.raw):
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in ld.files)
        assert rows == ld.meta["rows"], ld.load_id
        for entry in ld.meta["files"]:
            f = ld.path / entry["path"]
            assert entry["rows"] == pq.ParquetFile(f).metadata.num_rows
            assert entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        rewritten += bool(ld.meta.get("erasures"))
        assert not list(ld.path.glob(".*erase-tmp"))
    assert rewritten >= 5
    # the loader sees no new load: every table skipped, nothing appended twice
    rep = load_into_duckdb(p.raw, p.build_db)
    assert rep["tables"] == {} and rep["skipped"]
    # the next DAG run (same interval, so the same KPI window) has nothing new to build or publish
    window = erased["before"]["kpi_window"]
    assert window, "the DAG's build recorded no KPI window"
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_KPI_WINDOW_START", window[0])
    mp.setenv("CXW_KPI_WINDOW_END", window[1])
    try:
        assert buildstate.unchanged_since_publication(buildstate.build_fingerprint()["fingerprint"])
    finally:
        mp.undo()
    # the ledger still balances (dbt's test ran in erase's build; the table itself says so too)
    assert _rows(p.build_db, "select count(*) from staging.load_ledger "
                             "where extracted <> staged + quarantined + duplicates or duplicates < 0")[0][0] == 0


def test_everyone_else_is_unchanged_and_the_rest_still_publishes(erased):
    p, pid, before = erased["p"], erased["pid"], erased["before"]
    bi = p.published_db
    gen = _rows(bi, "select generation_id from publication")[0][0]
    assert gen != before["generation"]
    for t, rows in before["tables"].items():
        assert _rows(bi, f"select * from {t} where person_sk <> ? order by all", [pid]) == rows, t
        assert _rows(bi, f"select count(*) from {t} where person_sk = ?", [pid])[0][0] == 0, t
    kpi = dict(_rows(bi, "select kpi, value from kpi.kpi_period where grain = 'window' and channel = 'all' "
                         "and segment = 'all' and kpi in ('orders', 'review_rating_avg')"))
    assert before["their_orders"] > 0
    assert kpi["orders"] == before["kpi"]["orders"] - before["their_orders"]
    assert kpi["review_rating_avg"] == before["kpi"]["review_rating_avg"]
    # the customer-history snapshot lost exactly the person's partners
    snap = _rows(p.build_db, "select partner_id, count(*) from intermediate.snap_odoo__res_partners "
                             "group by 1 order by 1")
    assert snap == [r for r in before["snapshot"] if int(r[0]) not in erased["partners"]]
    # every kept generation (the earlier one rewritten, the new one) lacks the person; BI reads the newest
    from cxw.publish import generations

    gens = generations()
    assert before["generation"] in {g.stem for g in gens} and gen == gens[-1].stem
    for g in gens:
        for t in _person_tables(g):
            assert _rows(g, f"select count(*) from {t} where person_sk = ?", [pid])[0][0] == 0, (g.name, t)
    assert os.path.samefile(bi, gens[-1])


def test_dead_letters_and_alert_exports_lose_the_person_and_stay_consistent(erased):
    from cxw.alerts import alerts_root, export_alerts, read_exported_ids

    theirs, other, other_bytes = erased["dead"]
    rec = json.loads(theirs.read_text())
    assert rec["erased"] and rec["payload"] is None and rec["url"] is None and rec["reason"] == "unparseable page"
    assert other.read_bytes() == other_bytes
    root = alerts_root()
    ledger = read_exported_ids(root)
    for a, in erased["before"]["alerts"]:
        assert a not in ledger
    drops = [d for d in root.iterdir() if d.is_dir()]
    assert drops
    for d in drops:
        meta = json.loads((d / "_export.json").read_text())
        assert all(i in ledger for i in meta["alert_ids"])
        assert meta["alerts"] == len((d / "alerts.jsonl").read_text().splitlines())
    # a later hand-off neither re-exports nor removes the rewritten drops
    rep = export_alerts()
    assert rep["status"] == "nothing new"
    assert sorted(d for d in root.iterdir() if d.is_dir()) == sorted(drops)


# ------------------------------------------------------------ erase versus a running DAG (issue 15.6, real processes)

TASK = r"""
import json, sys, time
from cxw import tasks
from cxw.warehouse_lock import pipeline_task
what = sys.argv[1]
if what == "hold":  # a load_hubspot task that is still running: holds the lock until told to finish
    with pipeline_task("load_hubspot"):
        tasks.load_raw("hubspot")
        print("HOLDING", flush=True)
        sys.stdin.readline()
elif what == "publish":
    with pipeline_task("publish"):
        print("STARTED", time.time(), flush=True)
        tasks.publish("concurrent-run", None, None)
else:  # a whole later run's load -> build -> publish, each task under the lock as in the DAG
    start, end = sys.argv[2], sys.argv[3]
    with pipeline_task("load_hubspot"):
        print("STARTED", time.time(), flush=True)
        tasks.load_raw("hubspot")
    with pipeline_task("dbt_build"):
        tasks.dbt_build(end, run_id="run-after-erase")
    with pipeline_task("publish"):
        print("PUBLISHED", json.dumps(tasks.publish("run-after-erase", start, end)["generation_id"]), flush=True)
"""


def _task(what: str, *args, wait_s: str = "600", **kw) -> subprocess.Popen:
    env = {**os.environ, "CXW_BUILD_DB_LOCK_WAIT_S": wait_s, "CXW_FORCE_BUILD": "1"}
    return subprocess.Popen([sys.executable, "-c", TASK, what, *args], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _erase_cli(*args, wait_s: str = "600") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["CXW_BUILD_DB_LOCK_WAIT_S"] = wait_s
    return subprocess.Popen([sys.executable, "-m", "cxw_tools", "erase", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _raw_state(p) -> dict:
    return {str(f.relative_to(p.raw)): f.read_bytes() for f in sorted(p.raw.rglob("_load.json"))}


def test_erase_and_pipeline_tasks_wait_for_each_other_and_a_later_run_never_brings_the_person_back(erased):
    """An erase while a pipeline task runs waits for it (or, past CXW_BUILD_DB_LOCK_WAIT_S, fails saying so and
    changing nothing); a task starting during an erase waits for it to end; the generation a run publishes after
    the erase holds nothing of the person: erase rewrote the raw files first, and the run builds from them."""
    import time

    p = erased["p"]
    audit = p.state / "_erasure" / "audit.jsonl"
    # a second person: a CRM contact with an e-mail, in BI
    email2, contact2 = _rows(p.build_db, """
        select properties__email, id from raw_hubspot.contacts
        where properties__email like '%@%' and id <> ? order by id limit 1""", [erased["contact"]])[0]
    h2 = hashlib.sha256(f"demo-salt-not-secret|{email2.strip().lower()}".encode()).hexdigest()
    assert _rows(p.published_db, "select count(*) from core.dim_customers where email_hash = ?", [h2])[0][0] == 1
    interval = _rows(p.published_db, "select data_interval_start, data_interval_end from publication")[0]

    holder = _task("hold")
    assert holder.stdout.readline().strip() == "HOLDING", holder.stderr.read()
    try:
        # 1. past its budget, erase fails saying who holds the warehouse and that nothing changed
        raw_before, audit_before = _raw_state(p), audit.read_text()
        quick = _erase_cli("--crm-id", contact2, wait_s="1")
        out, err = quick.communicate(timeout=120)
        assert quick.returncode == 75, (out, err)
        assert "load_hubspot" in err and "Nothing was erased or changed" in err, err
        assert _raw_state(p) == raw_before and audit.read_text() == audit_before
        # 2. with a budget, erase waits while the task runs ...
        waiting = _erase_cli("--crm-id", contact2)
        time.sleep(3)
        assert waiting.poll() is None and _raw_state(p) == raw_before
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(60) == 0, holder.stderr.read()
    # ... and runs once the task has finished; while it runs, a task waits for it (or fails saying so)
    lockdir = p.build_db.parent / ".erase.lock.d"
    deadline = time.monotonic() + 120
    while not list(lockdir.glob("erase-*.json")):
        assert waiting.poll() is None and time.monotonic() < deadline, waiting.communicate()
        time.sleep(0.05)
    blocked = _task("publish", wait_s="1")
    b_out, b_err = blocked.communicate(timeout=120)
    assert blocked.returncode != 0 and "STARTED" not in b_out, b_out
    assert "an erasure is running" in b_err and "erase (pid" in b_err, b_err[-2000:]
    later = _task("run", interval[0], interval[1])
    out, err = waiting.communicate(timeout=900)
    assert waiting.returncode == 0, err[-3000:]
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["lock_wait_s"] >= 1.5 and record["counts"]["contacts"] >= 1  # 3 s less its start-up
    from datetime import datetime

    erase_end = datetime.fromisoformat(record["erased_at"]).timestamp() + record["seconds"]  # audit written
    l_out, l_err = later.communicate(timeout=900)
    assert later.returncode == 0, l_err[-3000:]
    started = float(next(x for x in l_out.splitlines() if x.startswith("STARTED")).split()[1])
    assert started >= erase_end, (started, erase_end)  # the later run's first task waited for the whole erase
    gen = json.loads(next(x for x in l_out.splitlines() if x.startswith("PUBLISHED")).split(" ", 1)[1])
    # the later run published a generation of its own, and the person is in none of the files BI or a build reads
    assert _rows(p.published_db, "select generation_id from publication")[0][0] == gen
    assert _rows(p.published_db, "select count(*) from core.dim_customers where email_hash = ?", [h2])[0][0] == 0
    left = [t for t in traces(p.home, [email2, h2]) if t[0].split("/")[0] in ("raw", "warehouse", "published")]
    assert left == [], left[:10]


def test_erase_by_google_review_id_removes_that_review_everywhere_and_nothing_else(erased):
    """Google reviews carry no identifier of their author (a display name is no evidence): erase removes exactly the
    reviews whose ids it is given, from raw, the marts, every kept generation, alert drops and run artefacts."""
    from cxw.publish import generations

    p = erased["p"]
    bi = p.published_db
    rid, stars = _rows(bi, "select review_id, rating from core.fct_reviews where review_source = 'google' "
                           "order by rating, review_id limit 1")[0]
    assert len(rid) >= 8
    before = _rows(bi, "select review_source, count(*) from core.fct_reviews group by 1 order by 1")
    assert traces(p.home, [rid], skip=("demo", "airflow"))  # it is there before
    proc = _erase_cli("--google-review-id", rid)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    line = (p.state / "_erasure" / "audit.jsonl").read_text().splitlines()[-1]
    rec = json.loads(line)
    assert rec["subject"].startswith("google_review_id:") and rid not in line
    assert rec["counts"]["google_reviews"] == 1 and rec["counts"]["raw_rows"]["google_reviews.reviews"] >= 1
    after = dict(_rows(bi, "select review_source, count(*) from core.fct_reviews group by 1 order by 1"))
    assert after == {k: v - (k == "google") for k, v in before}
    for g in generations():
        assert _rows(g, "select count(*) from core.fct_reviews where review_id = ?", [rid])[0][0] == 0, g.name
    assert traces(p.home, [rid]) == []
    # an id raw does not hold: nothing erased, exit 1
    none = _erase_cli("--google-review-id", "no-such-review-0000")
    n_out, n_err = none.communicate(timeout=300)
    assert none.returncode == 1 and "nothing erased" in n_err, n_err


def test_erase_on_a_postgres_target_refuses_saying_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(CXW_HOME=str(tmp_path), CXW_DBT_TARGET="postgres")
    proc = subprocess.run([sys.executable, "-m", "cxw_tools", "erase", "--email", "Jane.Doe@Example.org"], cwd=REPO,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    err = proc.stderr
    assert "nothing was changed" in err and "CXW_DBT_TARGET=duckdb ./cx erase" in err
    assert "load_into_postgres(paths().raw, pg_dsn(), force=True)" in err
    assert "delete from intermediate.snap_odoo__res_partners" in err and "snap_hubspot__contacts" in err
    assert "dbt build --full-refresh --target postgres" in err and "docs/contracts.md section 8" in err
    assert "jane.doe" not in (proc.stdout + err).lower()
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
