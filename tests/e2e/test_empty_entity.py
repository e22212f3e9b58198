"""Empty is a valid state (issue 14.6): a HubSpot portal without deals and a Trustpilot business unit without reviews
yet, through the real DAG (`airflow dags test`, demo company at scale XS, own CXW_HOME). The raw tables of the two
entities exist with their contract's columns, staging and marts hold no row of them, the raw gate passes, the build
publishes, and the published KPIs and the ledger equal the answer key (which says 0 deals and 0 Trustpilot reviews)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

EMPTY = {"hubspot_no_deals": 1, "trustpilot_no_reviews": 1}


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
def empty_run(tmp_path_factory, seed_airflow):
    import demo_company

    home = tmp_path_factory.mktemp("cxw_empty_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CXW_HOME", str(home))
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_ALERTS_WEBHOOK_URL", "CXW_GATE_ACCEPT_LOADS",
              "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START"):
        mp.delenv(k, raising=False)
    try:
        data = home / "demo" / "XS-42-empty"
        manifest = demo_company.generate(data, scale="XS", seed=42, dirt=EMPTY)
        from cxw.config import paths

        seed_airflow(paths().airflow_home)
        state, log = _run_dag(data, manifest, "empty")
        yield {"home": home, "state": state, "log": log.read_text(),
               "key": json.loads((data / "answer_key.json").read_text())}
    finally:
        mp.undo()


def _con(path: Path):
    return duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})


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
