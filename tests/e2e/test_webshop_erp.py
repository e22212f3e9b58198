"""Not every ERP is Odoo 17 (issue 17.7): the demo company writes its ERP in a webshop's schema (other table and column
names, other order and shipment states, amounts in integer cents, plain-text names, no column for what is constant;
`demo_company/erp_webshop.py`), copied into MariaDB. The real DAG (`airflow dags test`, scale XS, own CXW_HOME) reads
it with the worked-example mapping `extractors/odoo/mappings/webshop.yml` (CXW_ODOO_MAPPING) and must publish the
answer key of the Odoo schema: every KPI, and per entity the staged and quarantined records, with a balanced ledger.

The same run is also the empty-entity run (issue 14.6, "empty is a valid state"; until 2026-12-07 its own DAG run in
tests/e2e/test_empty_entity.py): the company's HubSpot portal has no deals and its Trustpilot business unit no reviews
yet (dirt `hubspot_no_deals`, `trustpilot_no_reviews`). The raw tables of the two entities exist with their contract's
columns, staging and marts hold no row of them, the raw gate passes, the build publishes, and the published KPIs and
the ledger equal the answer key (which says 0 deals and 0 Trustpilot reviews). The two shapes touch different sources
(the ERP's schema; a CRM object and a review site) and the webshop schema carries no deal id, so one run proves both.

Skips when MariaDB is unreachable (fails instead under CXW_REQUIRE_SERVICES=1, see tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import duckdb
import pytest
from _kpi_compare import compare, published_kpis, record_accounting

from tests.conftest import SERVICES, require_service

pytestmark = pytest.mark.services
HOST, PORT = SERVICES["mariadb"]
WEBSHOP_MAPPING = Path(__file__).resolve().parents[2] / "extractors" / "odoo" / "mappings" / "webshop.yml"
EMPTY = {"hubspot_no_deals": 1, "trustpilot_no_reviews": 1}  # entities that deliver no row (demo_company/world.py)


def _mariadb(sql: str, db: str | None = None) -> list:
    import pymysql

    con = pymysql.connect(host=HOST, port=PORT, user="root", database=db)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def webshop_run(tmp_path_factory, seed_airflow):
    require_service("mariadb")
    import demo_company
    from demo_company.erp import load_into

    home = tmp_path_factory.mktemp("cxw_webshop_home")
    db = f"cxw_test_webshop_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_HOME", str(home))
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_ALERTS_WEBHOOK_URL", "CXW_GATE_ACCEPT_LOADS",
              "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START", "CXW_ODOO_MAPPING", "CXW_ODOO_URL"):
        mp.delenv(k, raising=False)
    _mariadb(f"CREATE DATABASE `{db}`")
    try:
        data = home / "demo" / "XS-42-webshop"
        manifest = demo_company.generate(data, scale="XS", seed=42, erp_schema="webshop", dirt=EMPTY)
        url = f"mysql+pymysql://root@{HOST}:{PORT}/{db}"
        copied = load_into(url, str(data / manifest["erp"]["file"]))

        from cxw.config import paths
        from cxw_tools.demo import DAG_ID, airflow, airflow_env, demo_server, logical_date_for, source_env

        from tests.conftest import dag_run_state

        seed_airflow(paths().airflow_home)  # prepared: no `prepare_airflow` here (tests/conftest.py)
        env = airflow_env()
        logical_date = logical_date_for(manifest)
        log = paths().runs / "dags-test-webshop.log"
        with demo_server(data) as base_url:
            demo_env = source_env(data, manifest, base_url)
            env.update(demo_env)
            env["CXW_ODOO_URL"] = url          # the ERP is the MariaDB copy, not the generated SQLite file
            airflow("dags", "test", DAG_ID, logical_date, env=env, check=False, log_file=log)
        yield {"home": home, "state": dag_run_state(env["AIRFLOW_HOME"], logical_date), "log": log.read_text(), "db": db,
               "copied": copied, "demo_env": demo_env, "key": json.loads((data / "answer_key.json").read_text())}
    finally:
        _mariadb(f"DROP DATABASE IF EXISTS `{db}`")
        mp.undo()


def _con(path: Path):
    return duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})


def test_the_demo_webshop_schema_is_not_odoo_and_the_demo_reads_it_with_the_webshop_mapping(webshop_run):
    tables = {r[0] for r in _mariadb("SHOW TABLES", webshop_run["db"])}
    assert {"orders", "order_items", "customers", "shipments"} <= tables
    assert not tables & {"sale_order", "res_partner", "stock_picking"}
    assert {r[0] for r in _mariadb("SELECT DISTINCT status FROM orders", webshop_run["db"])} <= \
        {"new", "quoted", "confirmed", "cancelled"}
    assert webshop_run["demo_env"]["CXW_ODOO_MAPPING"] == str(WEBSHOP_MAPPING)


def test_the_dag_on_the_webshop_schema_in_mariadb_publishes_the_answer_key(webshop_run):
    assert webshop_run["state"] == "success", webshop_run["log"][-6000:]
    home, key = webshop_run["home"], webshop_run["key"]
    res = compare(key, published_kpis(home / "published" / "cx_warehouse.duckdb"))
    assert res.compared > 300 and not res.unpublished, res.unpublished
    assert not res.bad_kpis, res.report()
    unbalanced, problems = record_accounting(home / "warehouse" / "build.duckdb", key["expected"])
    assert unbalanced == 0
    assert problems == []
    # every ERP entity was staged from the webshop's tables (not a left-over Odoo file)
    assert {e for e in key["expected"] if e.startswith("odoo.")} == {f"odoo.{e}" for e in (
        "res_country", "res_currency", "crm_team", "res_partner", "product_category", "product_template",
        "product_product", "sale_order", "sale_order_line", "stock_picking_type", "stock_picking")}


def test_states_cents_and_names_land_as_staging_knows_them(webshop_run):
    assert webshop_run["state"] == "success", webshop_run["log"][-3000:]
    home, db = webshop_run["home"], webshop_run["db"]
    loads = [json.loads(f.read_text()) for f in (home / "raw" / "odoo" / "sale_order").glob("*/_load.json")]
    assert loads and {ld["table"] for ld in loads} == {"orders"} and {ld["cursor_column"] for ld in loads} == \
        {"updated_at"}
    con = _con(home / "warehouse" / "build.duckdb")
    try:
        states = {r[0] for r in con.execute("select distinct state from raw_odoo.sale_order").fetchall()}
        assert states and states <= {"draft", "sent", "sale", "cancel"}
        picking_states = {r[0] for r in con.execute("select distinct state from raw_odoo.stock_picking").fetchall()}
        assert picking_states and picking_states <= {"assigned", "done", "cancel"}
        raw_total = con.execute("select sum(amount_total) from raw_odoo.sale_order").fetchone()[0]
        codes = {r[0] for r in con.execute(
            "select picking_type_code from staging.stg_odoo__stock_picking_types").fetchall()}
        teams = {r[0] for r in con.execute("select team_name from staging.stg_odoo__crm_teams").fetchall()}
    finally:
        con.close()
    cents = _mariadb("SELECT SUM(gross_cents) FROM orders", db)[0][0]
    assert abs(raw_total - float(cents) / 100) < 0.005
    assert codes == {"incoming", "outgoing", "internal"}
    assert teams == {"Website", "Sales", "B2B Wholesale"}


# --- the entities without rows (issue 14.6), in the same run ------------------------------------------------------

@pytest.fixture(scope="module")
def empty_run(webshop_run):
    return webshop_run


def test_an_entity_without_rows_builds_passes_the_gate_and_publishes(empty_run):
    assert empty_run["state"] == "success", empty_run["log"][-6000:]
    home = empty_run["home"]
    assert empty_run["key"]["expected"]["hubspot.deals"]["records"] == 0
    assert empty_run["key"]["expected"]["trustpilot.reviews"]["records"] == 0
    con = _con(home / "warehouse" / "build.duckdb")
    try:
        # the raw tables exist with the columns the base models read, and no row
        cols = {r[0] for r in con.execute("describe raw_hubspot.deals").fetchall()}
        assert {"id", "updatedAt", "properties__dealname", "properties__amount", "_load_id"} <= cols
        assert con.execute("select count(*) from raw_hubspot.deals").fetchone()[0] == 0
        cols = {r[0] for r in con.execute("describe raw_trustpilot.reviews").fetchall()}
        assert {"id", "stars", "createdAt", "businessUnit__id", "consumer__displayName"} <= cols
        assert con.execute("select count(*) from raw_trustpilot.reviews").fetchone()[0] == 0
        assert con.execute("select count(*) from staging.stg_hubspot__deals").fetchone()[0] == 0
        assert con.execute("select count(*) from staging.stg_trustpilot__reviews").fetchone()[0] == 0
        # the other entities are there
        assert con.execute("select count(*) from staging.stg_hubspot__contacts").fetchone()[0] > 0
        assert con.execute("select count(*) from staging.stg_google_reviews__reviews").fetchone()[0] > 0
    finally:
        con.close()
    pub = _con(home / "published" / "cx_warehouse.duckdb")
    try:
        assert pub.execute("select count(*) from publication").fetchone()[0] >= 1
        sources = dict(pub.execute("select review_source, count(*) from core.fct_reviews group by 1").fetchall())
        assert sources.get("trustpilot", 0) == 0 and sources.get("google", 0) > 0
    finally:
        pub.close()


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def test_published_kpis_and_ledger_equal_the_answer_key_without_the_entity(empty_run):
    assert empty_run["state"] == "success", empty_run["log"][-3000:]
    home, key = empty_run["home"], empty_run["key"]
    pub = _con(home / "published" / "cx_warehouse.duckdb")
    rows = pub.execute(
        "select 'day', kpi, kpi_date::varchar, numerator, denominator, value, n from kpi.kpi_daily "
        "where channel = 'all' and segment = 'all' union all "
        "select grain, kpi, period_start::varchar, numerator, denominator, value, n from kpi.kpi_period "
        "where channel = 'all' and segment = 'all'").fetchall()
    pub.close()
    have = {(g, k, p[:10]): (num, den, val, n) for g, k, p, num, den, val, n in rows}
    kpis = {k for _, k, _ in have}
    compared, bad = 0, []
    for row in key["kpis"]:
        if row["kpi"] not in kpis or row.get("channel", "all") != "all" or row.get("segment", "all") != "all":
            continue
        k = (row["grain"], row["kpi"], str(row["period_start"])[:10])
        got = have.get(k)
        if got is None or not (_close(got[0], row["numerator"]) and _close(got[1], row["denominator"])
                               and _close(got[2], row["value"]) and int(got[3]) == int(row["n"])):
            bad.append(f"{k}: warehouse {got} != key {(row['numerator'], row['denominator'], row['value'], row['n'])}")
        compared += 1
    assert compared > 100 and "review_rating_avg" in kpis
    assert not bad, f"{len(bad)} of {compared} differ:\n" + "\n".join(bad[:20])
    con = _con(home / "warehouse" / "build.duckdb")
    staged = dict(((s + "." + e), n) for s, e, n in con.execute(
        "select source, entity, sum(staged) from staging.load_ledger group by all").fetchall())
    unbalanced = con.execute("select count(*) from staging.load_ledger "
                             "where extracted <> staged + quarantined + duplicates").fetchone()[0]
    con.close()
    assert unbalanced == 0
    for entity in ("hubspot.deals", "trustpilot.reviews"):
        assert (staged.get(entity) or 0) == 0
