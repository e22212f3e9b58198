"""The quality gate through the real DAG (`airflow dags test`), in a private copy of the session's published clean
XS-42 demo (`clean_demo_copy`, tests/conftest.py):

1. the clean run's summary shows both gates, the validation time, the Data Docs and the exported alerts, and its
   published file holds no plaintext person name;
2. (the BI reader that holds a generation open while the next run publishes: tests/e2e/test_multi_extraction.py,
   around its run B)
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


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, clean_demo_copy):
    """A private copy of the session's published clean XS-42 demo (`clean_demo`, tests/conftest.py: the README's
    `cxw demo` run once per test run), then the fault demo run in it, as a user would after `./cx demo`."""
    from tests.conftest import clean_demo_env

    home = clean_demo_copy(tmp_path_factory.mktemp("cxw_gate") / "home")
    db = home / "published" / "cx_warehouse.duckdb"
    sha_b = _sha(db)
    gens_b = sorted(p.name for p in (home / "published" / "generations").glob("*.duckdb"))
    log_b = (home / "runs" / "airflow-dags-test.log").read_text()
    # the fault demo: GA4 re-delivers the last day truncated
    t0 = time.perf_counter()
    fault = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", "XS", "--inject-fault", "gate"],
                           cwd=REPO, env=clean_demo_env(home), capture_output=True, text=True)
    fault_secs = time.perf_counter() - t0
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_HOME", str(home))
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_ALERTS_WEBHOOK_URL", "CXW_GATE_ACCEPT_LOADS",
              "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START"):
        mp.delenv(k, raising=False)
    try:
        yield {"home": home, "db": db, "log_b": log_b, "sha_b": sha_b, "gens_b": gens_b, "fault": fault,
               "fault_secs": fault_secs}
    finally:
        mp.undo()


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
