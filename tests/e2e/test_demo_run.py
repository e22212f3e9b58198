"""The README's first command, end to end: generate the demo company, serve its APIs on loopback, run the real DAG
under `airflow dags test`, and compare the published marts with the generator's answer key.
Then run the same DAG again: at-least-once delivery must leave the published marts identical.

Scale XS here (`./cx test`): the first run is the session's shared `cxw demo --scale XS --seed 42` (`clean_demo`,
tests/conftest.py), read in place; the re-run test works on a private copy of it. `CXW_E2E_SCALE=S` (or any other
scale) runs the command itself at that scale instead. The heavy stage runs every test of this file again at scale S
(`tests/e2e/test_demo_run_scale_s.py`): at S the key-driver analysis has enough responses to rank the planted NPS
drivers, which XS cannot show."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from _kpi_compare import compare, published_kpis, record_accounting

REPO = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("CXW_E2E_SCALE", "XS")

# KPIs the warehouse must publish already; every other KPI of the answer key is compared when it exists.
REQUIRED_KPIS = {"nps", "csat_pct", "csat_mean", "ces_mean", "ces_easy_pct", "review_rating_avg",
                 "review_negative_share", "review_reply_rate", "sessions", "engagement_rate", "bounce_rate",
                 "conversion_rate", "orders", "net_revenue", "aov", "on_time_delivery_rate", "open_backlog",
                 "loop_closed_rate"}
# first-contact resolution is deliberately absent: the HubSpot tickets carry no agent-reply count (DECISIONLOG)


def run_demo_command(tmp_path_factory, scale: str):
    """(home, env, stdout) of `python -m cxw_tools demo --scale <scale> --seed 42` in a new CXW_HOME."""
    from tests.conftest import clean_demo_env

    home = tmp_path_factory.mktemp("cxw_home")
    env = clean_demo_env(home)
    first = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", scale, "--seed", "42"], cwd=REPO,
                           env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-5000:]
    return home, env, first.stdout


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, request):
    """(home, env, stdout) of the first run; at the shared scale the session's run (read only: the tests below open
    its files read-only, the re-run test copies it)."""
    from tests.conftest import CLEAN_DEMO_SCALE, clean_demo_env

    if SCALE != CLEAN_DEMO_SCALE:
        return run_demo_command(tmp_path_factory, SCALE)
    shared = request.getfixturevalue("clean_demo")
    return shared["home"], clean_demo_env(shared["home"]), shared["stdout"]


@pytest.fixture
def demo_run_to_change(demo_run, tmp_path, request):
    """(home, env) of the first run for a test that runs the DAG again: a private copy of the shared run's home."""
    from tests.conftest import CLEAN_DEMO_SCALE

    home, env, _ = demo_run
    if SCALE == CLEAN_DEMO_SCALE:
        home = request.getfixturevalue("clean_demo_copy")(tmp_path / "home")
        env = {**env, "CXW_HOME": str(home)}
    return home, env


def _scale(home: Path) -> str:
    """The scale of the demo company in ``home`` (its one generated company, `<scale>-42`)."""
    [company] = [d.name for d in (home / "demo").iterdir() if (d / "manifest.json").exists()]
    return company.split("-")[0]


def test_demo_ends_by_printing_the_dashboard_command(demo_run):
    home, _, out = demo_run
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert "./cx dashboard" in last and str(_published(home)) in last, last


def _published(home: Path) -> Path:
    return home / "published" / "cx_warehouse.duckdb"


def _answer_key(home: Path) -> dict:
    return json.loads((home / "demo" / f"{_scale(home)}-42" / "answer_key.json").read_text())


def test_demo_run_prints_the_summary_and_publishes(demo_run):
    home, _, out = demo_run
    assert _published(home).exists()
    for needle in ("Extracted (rows per source and entity)", "Quarantined rows", "Headline KPIs", "Published:",
                   "read_only=True", "Analyses (rows written): key_drivers cx_key_drivers "):
        assert needle in out, f"summary lacks {needle!r}"
    for source in ("odoo", "hubspot", "ga4", "google_reviews", "trustpilot"):
        assert f"  {source}" in out


def test_published_kpis_equal_the_answer_key(demo_run):
    home, _, _ = demo_run
    key = _answer_key(home)
    result = compare(key, published_kpis(_published(home)))
    missing_required = REQUIRED_KPIS & result.unpublished
    assert not missing_required, f"KPIs not published yet: {sorted(missing_required)}"
    # KPIs the key does not define (e.g. nps_customer_level) are not compared
    assert result.compared > 500
    assert not result.mismatches, (f"{sum(map(len, result.mismatches.values()))} of {result.compared} KPI rows "
                                   f"differ:\n" + result.report(result.mismatches))
    assert not result.extra, "rows the answer key does not have:\n" + result.report(result.extra)


def test_every_record_is_staged_or_quarantined_as_the_answer_key_expects(demo_run):
    """Nothing lost: per source/entity, staged = distinct records − quarantined, and quarantine reasons and counts
    equal the generator's truth; the load ledger balances for every load."""
    home, _, _ = demo_run
    unbalanced, problems = record_accounting(home / "warehouse" / "build.duckdb", _answer_key(home)["expected"])
    assert unbalanced == 0
    assert not problems, "\n".join(problems)


def test_no_plaintext_pii_in_the_published_file(demo_run):
    home, _, _ = demo_run
    import re

    email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
    con = duckdb.connect(str(_published(home)), read_only=True)
    for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_schema in ('core', 'kpi', 'cx')").fetchall():
        hits = con.execute(f'select count(*) from "{schema}"."{table}" where regexp_matches("{column}", ?)',
                           [email.pattern]).fetchone()[0]
        assert hits == 0, f"{hits} plaintext e-mail addresses in {schema}.{table}.{column}"
    con.close()


def test_published_file_is_described_typed_and_readable_by_bi_clients(demo_run):
    """Issue 18.3 / 18.5 on the demo's real publication: every published table and column carries a description,
    no column has a type BI drivers cannot map, the KPI dictionary defines exactly the KPIs kpi_period publishes,
    a DuckDB 1.x client opens the file, and the generation's dbt docs exist."""
    from duckdb_1x import query_with_duckdb_1x

    from cxw.publish import BI_TYPE_CASTS

    home, _, _ = demo_run
    con = duckdb.connect(str(_published(home)), read_only=True)
    try:
        undocumented_tables = con.execute("select schema_name || '.' || table_name from duckdb_tables() "
                                          "where coalesce(trim(comment), '') = ''").fetchall()
        undocumented_columns = con.execute(
            "select schema_name || '.' || table_name || '.' || column_name from duckdb_columns() "
            "where not internal and coalesce(trim(comment), '') = ''").fetchall()
        bad_types = con.execute("select schema_name || '.' || table_name || '.' || column_name, data_type "
                                "from duckdb_columns() where not internal and data_type in "
                                "(select unnest(?::varchar[]))", [list(BI_TYPE_CASTS)]).fetchall()
        defined = {r[0] for r in con.execute("select kpi from kpi.kpi_dictionary").fetchall()}
        published = {r[0] for r in con.execute("select distinct kpi from kpi.kpi_period").fetchall()}
        generation, n_period = con.execute("select generation_id, (select count(*) from kpi.kpi_period) "
                                           "from publication").fetchone()
    finally:
        con.close()
    assert undocumented_tables == [] and undocumented_columns == []
    assert bad_types == []
    assert defined == published
    assert query_with_duckdb_1x(_published(home), ["select count(*) from kpi.kpi_period"])["results"] == [
        [[n_period]]]
    assert (home / "published" / "docs" / generation / "static_index.html").exists()


def _pii_names_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_pii_names", REPO / "tests" / "gate" / "_pii_names.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_plaintext_person_names_in_the_published_file(demo_run):
    """No first / last / full name of the generator's people (HubSpot contacts, Odoo partners, review display names)
    in any string column of core, kpi, cx - names reach the warehouse only as salted hashes."""
    home, _, _ = demo_run
    pii = _pii_names_module()
    full, single = pii.truth_names(home / "demo" / f"{_scale(home)}-42")
    # the scan itself catches a leak (a display name inside text, a first name as a whole value)
    probe = duckdb.connect()
    probe.execute("create schema core")
    shown, first = sorted(full)[len(full) // 2], sorted(single)[0]
    probe.execute("create table core.t (a varchar, b varchar)")
    probe.execute("insert into core.t values (?, 'x'), ('y', ?)", [f"thanks {shown.upper()}!", f" {first} "])
    assert pii.name_leaks(probe, full, single) == [("core", "t", "a", 1), ("core", "t", "b", 1)]
    probe.close()
    con = duckdb.connect(str(_published(home)), read_only=True, config={"enable_external_access": False})
    leaks = pii.name_leaks(con, full, single)
    con.close()
    assert not leaks, f"plaintext person names in the published file (schema, table, column, rows): {leaks}"


def test_the_pipeline_build_runs_the_data_tests_but_not_the_unit_tests(demo_run):
    # unit tests check model logic on fixture rows (CI runs them: tests/dbt/test_dbt_fixture.py), not the data
    home, _, _ = demo_run
    kinds = {r["unique_id"].split(".")[0] for r in
             json.loads((home / "dbt" / "target" / "run_results.json").read_text())["results"]}
    assert {"model", "test", "seed", "snapshot"} <= kinds and "unit_test" not in kinds, kinds


def test_running_the_dag_again_leaves_the_published_marts_identical(demo_run_to_change):
    """At-least-once: the whole DAG again over the same data — forced to rebuild everything (CXW_FORCE_BUILD=1), then
    as scheduled, where it finds nothing new, skips dbt/validate/publish and says so — keeps the same generation."""
    home, env = demo_run_to_change
    scale = _scale(home)
    con = duckdb.connect(str(_published(home)), read_only=True)
    before = con.execute("select generation_id, content_fingerprint from publication").fetchone()
    con.close()
    forced = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", scale, "--seed", "42"], cwd=REPO,
                            env={**env, "CXW_FORCE_BUILD": "1"}, capture_output=True, text=True)
    assert forced.returncode == 0, forced.stdout[-5000:] + forced.stderr[-5000:]
    assert "dbt build: {" in forced.stdout and "(generation %s, unchanged)" % before[0] in forced.stdout
    con = duckdb.connect(str(_published(home)), read_only=True)
    after = con.execute("select generation_id, content_fingerprint from publication").fetchone()
    con.close()
    assert after == before, "a second run over the same data changed the marts"
    again = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", scale, "--seed", "42"], cwd=REPO,
                           env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-5000:]
    assert "dbt build: skipped — no new data" in again.stdout, again.stdout[-3000:]
    assert "Nothing new to publish" in again.stdout
    # dbt_build itself succeeds and skips the audit and publish at once; export_alerts still runs (it hands over
    # alerts of the published generation not handed over yet: none here) and so does summarize
    meta = sqlite3.connect(home / "airflow" / "airflow.db")
    try:
        [run_id] = meta.execute("select run_id from dag_run where dag_id = 'cx_pipeline' order by id desc limit 1") \
            .fetchone()
        states = dict(meta.execute("select task_id, state from task_instance where run_id = ?", [run_id]).fetchall())
    finally:
        meta.close()
    assert {t: states[t] for t in ("dbt_build", "analyze", "validate", "publish", "export_alerts", "summarize")} == {
        "dbt_build": "success", "analyze": "skipped", "validate": "skipped", "publish": "skipped",
        "export_alerts": "success", "summarize": "success"}, states
    con = duckdb.connect(str(_published(home)), read_only=True)
    assert con.execute("select generation_id, content_fingerprint from publication").fetchone() == before
    con.close()


def test_the_demo_plants_kpi_target_breaches_and_met_targets_and_exports_each_breach(demo_run):
    """Issue 19.3: the shipped kpi_targets are the demo company's. Which months breach is derived here from the answer
    key (its monthly values) and the seed, independently of the mart: a missed closed month on a sample of 30+."""
    import csv

    home, _, _ = demo_run
    key = _answer_key(home)
    direction = {r["kpi"]: r["direction_of_good"]
                 for r in csv.DictReader((REPO / "dbt_project/seeds/kpi_definitions.csv").open())}
    targets = {r["kpi"]: float(r["target_value"])
               for r in csv.DictReader((REPO / "dbt_project/seeds/kpi_targets.csv").open())}
    end = key["window"]["end"]
    want_breach, want_met = set(), set()
    for r in key["kpis"]:
        if r["grain"] != "month" or r["kpi"] not in targets or r["segment"] != "all" or r["channel"] != "all":
            continue
        v, t = r["value"], targets[r["kpi"]]
        met = v >= t if direction[r["kpi"]] == "higher" else v <= t
        closed = r["period_start"][:7] < end[:7]
        (want_met if met else want_breach if closed and r["n"] >= 30 else set()).add(
            f"{r['kpi']}|month|{r['period_start']}|all|all")
    assert want_breach and want_met, "the demo's targets must plant a breach and a met target"
    con = duckdb.connect(str(_published(home)), read_only=True)
    try:
        breach = {k for k, in con.execute("select target_key from kpi.kpi_vs_target where is_breach").fetchall()}
        met = {k for k, in con.execute("select target_key from kpi.kpi_vs_target where is_target_met").fetchall()}
    finally:
        con.close()
    assert breach == want_breach and met == want_met
    exported = json.loads((home / "alerts" / "exported_ids.json").read_text())["exported"]
    assert {k.removeprefix("kpi-target:") for k in exported if k.startswith("kpi-target:")} == want_breach


def test_the_key_driver_features_are_the_generators_truth_and_the_planted_nps_drivers_rank_in_order(demo_run):
    """Issue 19.2 on the demo's real pipeline: the dbt feature rows of NPS (int_feedback_driver_features, in the build
    database) add up to what the generator planted (the same derivation as tests/analytics/test_key_drivers.py), and
    the published cx_key_drivers ranks delay > tickets > channel for NPS over the window (at scale S: ≈1,600
    responses; at XS fewer than the analysis' minimum: no rows)."""
    from cxw.analytics.key_drivers import MIN_RESPONSES
    from demo_company.config import SCALES
    from tests.analytics.test_key_drivers import _nps_features

    home, _, _ = demo_run
    truth = _nps_features(SCALES[_scale(home)].persons, 42)
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        built = con.execute("select count(*), round(sum(delay_days), 3), sum(ticket_count), sum(is_delivery_late), "
                            "sum(case when channel = 'email' then 1 else 0 end), sum(score) "
                            "from intermediate.int_feedback_driver_features where score_name = 'nps'").fetchone()
    finally:
        con.close()
    assert built == (len(truth), round(truth.delay_days.sum(), 3), truth.ticket_count.sum(),
                     truth.is_delivery_late.sum(), (truth.channel == "email").sum(), truth.score.sum())
    con = duckdb.connect(str(_published(home)), read_only=True)
    try:
        rank = dict(con.execute("select driver, importance_rank from cx.cx_key_drivers "
                                "where score = 'nps' and period_grain = 'window'").fetchall())
    finally:
        con.close()
    if len(truth) < MIN_RESPONSES:
        assert rank == {}
    else:
        assert rank["delay_days"] < rank["ticket_count"] < rank["channel"], rank
