"""The quality gate through the real DAG (`airflow dags test`, demo company at scale XS, own CXW_HOME):

1. a first run (sources as of 2025-06-20) publishes generation A;
2. a BI reader PROCESS holds A open and queries it in a loop while the whole pipeline runs again on newer source
   data and publishes generation B: the reader keeps seeing A with no lock errors, new connections see B;
3. `python -m cxw_tools demo --inject-fault gate` (GA4 re-delivers the last day truncated): validate_raw fails naming
   the check, dbt/validate/publish do not run, the run ends failed, the published file's checksum is unchanged;
4. bad data injected into a copy of the built candidate (NPS 11 rows bypassing quarantine, a null fact key, a
   > 50% row drop, a plaintext e-mail): the marts gate names each check, and the DAG's validate → publish order
   run in a real process leaves the published file unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _generation(db: Path) -> str:
    con = duckdb.connect(str(db), read_only=True, config={"enable_external_access": False})
    try:
        return con.execute("select generation_id from publication").fetchone()[0]
    finally:
        con.close()


_READER = r"""
import sys, time, duckdb, pathlib
path, stop = sys.argv[1], pathlib.Path(sys.argv[2])
con = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
n = 0
while not stop.exists():
    try:
        gen = con.execute("select generation_id from publication").fetchone()[0]
        rows = con.execute("select count(*) from kpi.kpi_daily").fetchone()[0]
        print(f"OK {gen} {rows}", flush=True)
    except Exception as exc:
        print(f"ERR {type(exc).__name__}: {exc}", flush=True)
    n += 1
    time.sleep(0.25)
con.close()
print(f"DONE {n}", flush=True)
"""


def _run_dag(data_dir: Path, manifest: dict, tag: str) -> tuple[str, Path]:
    from cxw.config import paths
    from cxw_tools.demo import DAG_ID, airflow, airflow_env, demo_server, logical_date_for, source_env

    from tests.conftest import dag_run_state

    env = airflow_env()  # Airflow's home is prepared: seed_airflow (tests/conftest.py)
    logical_date = logical_date_for(manifest)
    log = paths().runs / f"dags-test-{tag}.log"
    with demo_server(data_dir) as base_url:
        env.update(source_env(data_dir, manifest, base_url))
        airflow("dags", "test", DAG_ID, logical_date, env=env, check=False, log_file=log)
    return dag_run_state(env["AIRFLOW_HOME"], logical_date), log


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, seed_airflow):
    import demo_company

    home = tmp_path_factory.mktemp("cxw_gate_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_HOME", str(home))
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_ALERTS_WEBHOOK_URL", "CXW_GATE_ACCEPT_LOADS",
              "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START"):
        mp.delenv(k, raising=False)
    published = home / "published"
    try:
        from cxw.config import paths

        seed_airflow(paths().airflow_home)
        # 1. generation A from the sources as they were on 2025-06-20
        early = home / "demo" / "XS-42-early"
        m_early = demo_company.generate(early, scale="XS", seed=42, as_of="2025-06-20")
        state_a, log_a = _run_dag(early, m_early, "A")
        assert state_a == "success", log_a.read_text()[-5000:]
        from cxw.config import paths

        db = paths().published_db
        gen_a = _generation(db)

        # 2. a BI reader holds A open while the whole pipeline publishes B from the complete sources
        stop = home / "stop-reader"
        reader = subprocess.Popen([sys.executable, "-c", _READER, str(db), str(stop)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        full = home / "demo" / "XS-42"  # where `cx demo` keeps the clean company
        m_full = demo_company.generate(full, scale="XS", seed=42)
        state_b, log_b = _run_dag(full, m_full, "B")
        gen_b_new_conn = _generation(db)
        time.sleep(1.0)
        stop.write_text("stop")
        out, err = reader.communicate(timeout=60)
        assert state_b == "success", log_b.read_text()[-5000:]
        sha_b = _sha(db)
        gens_b = sorted(p.name for p in (published / "generations").glob("*.duckdb"))

        # 3. the fault demo: GA4 re-delivers the last day truncated
        t0 = time.perf_counter()
        fault = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", "XS", "--inject-fault", "gate"],
                               cwd=REPO, env=dict(os.environ), capture_output=True, text=True)
        fault_secs = time.perf_counter() - t0
        yield {"home": home, "db": db, "log_b": log_b.read_text(), "gen_a": gen_a,
               "gen_b_new_conn": gen_b_new_conn, "reader_out": out,
               "reader_err": err, "reader_rc": reader.returncode, "sha_b": sha_b, "gens_b": gens_b,
               "fault": fault, "fault_secs": fault_secs}
    finally:
        mp.undo()


def test_bi_reader_keeps_its_generation_while_the_whole_pipeline_publishes(pipeline):
    lines = pipeline["reader_out"].splitlines()
    assert pipeline["reader_rc"] == 0, pipeline["reader_err"][-2000:]
    errors = [ln for ln in lines if ln.startswith("ERR")]
    assert not errors, f"the BI reader saw errors while the pipeline ran: {errors[:5]}"
    seen = {ln.split()[1] for ln in lines if ln.startswith("OK")}
    assert seen == {pipeline["gen_a"]}, f"an open BI connection must keep reading its generation, saw {seen}"
    assert sum(ln.startswith("OK") for ln in lines) > 20  # it really was reading throughout the run
    assert pipeline["gen_b_new_conn"] != pipeline["gen_a"], "a new connection must see the new generation"


def test_a_passing_run_summary_shows_gate_time_data_docs_and_alerts(pipeline):
    log = pipeline["log_b"]
    assert re.search(r"Raw gate: passed — \d+ expectations", log) and re.search(r"Marts gate: passed", log)
    m = re.search(r"Validation wall time: ([\d.]+) s of ([\d.]+) s run wall time", log)
    assert m and 0 < float(m.group(1)) < float(m.group(2)), "summary lacks validation wall time vs run time"
    docs = re.search(r"Data Docs: (\S+/data_docs/index\.html)", log)
    assert docs and Path(docs.group(1)).exists()
    index = Path(docs.group(1)).read_text()
    assert 'href="raw/index.html"' in index and 'href="marts/index.html"' in index
    assert re.search(r"Alerts exported: \d+ new", log)


def test_fault_demo_fails_closed_through_the_real_dag(pipeline):
    fault, home, db = pipeline["fault"], pipeline["home"], pipeline["db"]
    out = fault.stdout
    assert fault.returncode == 0, out[-5000:] + fault.stderr[-3000:]  # 0 = the gate blocked as it must
    assert "cx: DAG run state: failed" in out
    assert "checksum UNCHANGED" in out
    # housekeeping (issue 17.6): the faulty company is removed after its run, the clean one stays
    assert "cx: removed the fault demo's company" in out
    assert not any((home / "demo").glob("*-fault-*")) and (home / "demo" / "XS-42" / "manifest.json").exists()
    # The reason names the suite, the expectation, the table and the count.
    verdict = next(ln for ln in out.splitlines() if ln.startswith("cx: gate verdict:"))
    assert "suite raw.load_log" in verdict and "expect_column_pair_values_a_to_be_greater_than_b" in verdict
    assert re.search(r"raw\.ga4__events (export day \d{4}-\d{2}-\d{2} )?has \d+ rows vs median \d+", verdict), verdict
    assert "Data Docs:" in verdict
    # The summary is printed for the failed run, with the reason and the Data Docs path.
    assert "NOT PUBLISHED: raw gate failed" in out and "Data Docs: " in out
    # Published file untouched; no new generation; downstream tasks never ran.
    assert _sha(db) == pipeline["sha_b"]
    assert sorted(p.name for p in (home / "published" / "generations").glob("*.duckdb")) == pipeline["gens_b"]
    log = (home / "runs" / "airflow-dags-test-fault.log").read_text()
    for task in ("dbt_build", "analyze", "validate", "publish", "export_alerts"):
        assert f"start task task_id={task} " not in log, f"{task} ran after the gate failed"
    assert "ValidationFailed" in log and "suite raw.load_log" in log
    # The failing run's Data Docs exist and hold no personal data.
    fault_run = max((p for p in (home / "runs").glob("manual__*") if (p / "validation_raw.json").exists()),
                    key=lambda p: (p / "validation_raw.json").stat().st_mtime)
    rep = json.loads((fault_run / "validation_raw.json").read_text())
    assert rep["status"] == "failed" and Path(rep["data_docs"]).exists()
    assert not (fault_run / "validation.json").exists(), "the marts gate must not have run"
    leaked = [f for f in fault_run.rglob("*") if f.suffix in (".json", ".html", ".yml")
              and EMAIL.search(f.read_text(errors="ignore"))]
    assert not leaked, leaked[:3]


def _candidate(pipeline, tmp_path) -> Path:
    cand = tmp_path / "candidate.duckdb"
    shutil.copyfile(pipeline["home"] / "warehouse" / "build.duckdb", cand)
    return cand


_DAG_ORDER = r"""
import sys
from cxw import tasks
tasks.validate("inject", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00")   # raises: publish never runs
tasks.publish("inject", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00")
"""


INJECTIONS = {
    "nps_11_bypassing_quarantine": (
        "insert into core.fct_survey_responses select * replace (feedback_id || '-injected' as feedback_id, "
        "11 as score, 11 as score_normalised) from core.fct_survey_responses where survey_type = 'NPS' limit 2",
        ["suite core.fct_survey_responses: expect_column_values_to_be_between on table core.fct_survey_responses "
         "column score where survey_type==\"NPS\" failed — 2 offending row(s)"]),
    "null_fact_key": (
        "update core.fct_orders set order_id = null where order_id in (select order_id from core.fct_orders "
        "order by order_id limit 3)",
        ["suite core.fct_orders: expect_column_values_to_not_be_null on table core.fct_orders column order_id "
         "failed — 3 offending row(s)"]),
    "row_drop_vs_published": (
        "delete from core.fct_web_sessions where hash(session_key) % 10 < 7",
        ["suite core.fct_web_sessions: expect_table_row_count_to_be_between on table core.fct_web_sessions failed "
         "— observed"]),
    "plaintext_email": (
        "update core.fct_support_tickets set category = 'jane.doe@example.com' where ticket_id in "
        "(select ticket_id from core.fct_support_tickets order by ticket_id limit 4)",
        ["suite core.fct_support_tickets: expect_column_values_to_not_match_regex on table "
         "core.fct_support_tickets column category failed — 4 offending row(s)"]),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_bad_candidate_is_blocked_with_the_check_named_and_nothing_published(pipeline, tmp_path, case):
    from cxw.gate import ValidationFailed, validate_marts as validate

    sql, needles = INJECTIONS[case]
    cand = _candidate(pipeline, tmp_path)
    con = duckdb.connect(str(cand))
    con.execute(sql)
    con.close()
    db = pipeline["db"]
    sha = _sha(db)
    out_dir = tmp_path / "run"
    with pytest.raises(ValidationFailed) as exc:
        validate("inject", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00", build_db=cand,
                 out_dir=out_dir, published_db=db)
    msg = str(exc.value)
    for needle in needles:
        assert needle in msg, msg
    assert f"Data Docs: {out_dir / 'data_docs' / 'marts' / 'index.html'}" in msg and not EMAIL.search(msg)
    leaked = [f for f in out_dir.rglob("*") if f.suffix in (".json", ".html", ".yml")
              and EMAIL.search(f.read_text(errors="ignore"))]
    assert not leaked, leaked[:3]
    # The DAG's order (validate, then publish) in a real process on the real files: publish is never reached.
    env = dict(os.environ, CXW_HOME=str(pipeline["home"]), CXW_BUILD_DB=str(cand))
    proc = subprocess.run([sys.executable, "-c", _DAG_ORDER], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "ValidationFailed" in proc.stderr, proc.stderr[-2000:]
    assert _sha(db) == sha
    gens = sorted(p.name for p in (pipeline["home"] / "published" / "generations").glob("*.duckdb"))
    assert gens == pipeline["gens_b"]


def test_the_unmodified_candidate_passes_the_marts_gate(pipeline, tmp_path):
    """Control for the injections above: the same candidate without injected faults passes, so each failure is
    caused by its injection."""
    from cxw.gate import validate_marts as validate

    rep = validate("control", "2025-06-30T00:00:00+00:00", "2025-07-01T00:00:00+00:00",
                   build_db=_candidate(pipeline, tmp_path), out_dir=tmp_path / "run", published_db=pipeline["db"])
    assert rep["status"] == "passed" and rep["compared_with_published"]


def test_the_published_file_holds_no_plaintext_person_names(pipeline):
    """Beside e-mails and phones (the marts gate): no first / last / full name of the demo company's people
    (HubSpot contacts, Odoo partners, Google / Trustpilot display names) in any string column of core, kpi, cx of the
    published generation, nor in the Data Docs / validation results of its run (tests/gate/_pii_names.py)."""
    from _pii_names import name_leaks, truth_names

    full, single = truth_names(pipeline["home"] / "demo" / "XS-42")
    con = duckdb.connect(str(pipeline["db"]), read_only=True, config={"enable_external_access": False})
    try:
        leaks = name_leaks(con, full, single)
    finally:
        con.close()
    assert not leaks, f"plaintext person names in the published file (schema, table, column, rows): {leaks}"
    # case-sensitive here: Data Docs embed library code, where a short name like "An N." would match lower-case text
    pattern = re.compile("|".join(re.escape(n) for n in sorted(full, key=len, reverse=True)))
    docs = [f for run in (pipeline["home"] / "runs").glob("manual__*") for f in run.rglob("*")
            if f.suffix in (".json", ".html", ".yml") and pattern.search(f.read_text(errors="ignore"))]
    assert not docs, docs[:3]
