"""The whole pipeline on PostgreSQL (issue 21.1): the real DAG (`airflow dags test`) on the XS demo company with
CXW_DBT_TARGET=postgres and a database of its own loads, builds, audits the build schemas, publishes by swapping the
serving schemas (bi_core, bi_kpi, bi_cx, bi_meta) in one transaction and exports the alerts from them. Its KPIs equal
those of the DuckDB pipeline on the same raw loads (load → dbt → gate → publish with CXW_DBT_TARGET=duckdb in the same
home: no second extraction). A BI session reading during a publish sees one generation, never a mix; rollback swaps
the previous generation back; the audiences' roles read the serving schema after each swap.

Heavy (one XS DAG run on PostgreSQL plus the DuckDB steps): one module fixture feeds every test."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy


def _admin():
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    return conn


def _connect(dbname: str, user: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=5432, user=user, dbname=dbname)


@pytest.fixture(scope="module")
def pg_run(tmp_path_factory, seed_airflow):
    from tests.conftest import require_service

    require_service("postgres")
    import demo_company

    tag = uuid.uuid4().hex[:8]
    dbname, prefix = f"cxw_e2e_pg_{tag}", f"cxwpg{tag}_"
    home = tmp_path_factory.mktemp("cxw_pg_home")
    mp = pytest.MonkeyPatch()
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_ALERTS_WEBHOOK_URL", "CXW_GATE_ACCEPT_LOADS",
              "CXW_KPI_WINDOW_END", "CXW_KPI_WINDOW_START", "CXW_PG_PASSWORD", "PGOPTIONS"):
        mp.delenv(k, raising=False)
    for k, v in {"CXW_HOME": str(home), "CXW_DBT_TARGET": "postgres", "CXW_PG_HOST": "127.0.0.1",
                 "CXW_PG_PORT": "5432", "CXW_PG_USER": "postgres", "CXW_PG_DBNAME": dbname,
                 "CXW_PG_ROLE_PREFIX": prefix}.items():
        mp.setenv(k, v)
    admin = _admin()
    try:
        from cxw.config import paths
        from cxw_tools.demo import DAG_ID, airflow, airflow_env, demo_server, logical_date_for, source_env

        from tests.conftest import dag_run_state

        data = home / "demo" / "XS-42"
        manifest = demo_company.generate(data, scale="XS", seed=42)
        seed_airflow(paths().airflow_home)
        env = airflow_env()
        logical_date = logical_date_for(manifest)
        log = paths().runs / "dags-test-pg.log"
        with demo_server(data) as base_url:
            env.update(source_env(data, manifest, base_url))
            t0 = time.perf_counter()
            airflow("dags", "test", DAG_ID, logical_date, env=env, check=False, log_file=log)
            pg_secs = time.perf_counter() - t0
        state = dag_run_state(env["AIRFLOW_HOME"], logical_date)
        duck_files_after_pg = sorted(str(f.relative_to(home)) for f in home.rglob("*.duckdb"))
        # the DuckDB pipeline on the same raw loads, in the same home (its own build and published files)
        duck_env = {**env, "CXW_DBT_TARGET": "duckdb"}  # the DAG's settings (history start, salt), DuckDB target
        code = (
            "import json, sys; from cxw import tasks; end = sys.argv[1] + 'T00:00:00+00:00'; "
            "tasks.load_raw(); tasks.dbt_build(end, 'duckdb-compare'); "
            "tasks.validate('duckdb-compare', None, end); "
            "print(json.dumps(tasks.publish('duckdb-compare', None, end)['status']))")
        t0 = time.perf_counter()
        duck = subprocess.run([sys.executable, "-c", code, logical_date], cwd=REPO, env=duck_env, capture_output=True,
                              text=True)
        duck_secs = time.perf_counter() - t0
        print(f"\nXS on PostgreSQL: DAG {pg_secs:.1f}s; DuckDB load+build+gate+publish {duck_secs:.1f}s")
        yield {"home": home, "db": dbname, "prefix": prefix, "state": state, "log": log,
               "duck_files_after_pg": duck_files_after_pg,
               "duck": duck, "pg_seconds": pg_secs, "duck_seconds": duck_secs}
    finally:
        mp.undo()
        from tests.pg_scratch import drop_scratch

        drop_scratch(admin, dbname, prefix)


@pytest.fixture
def pg_env(pg_run, monkeypatch):
    """This process's settings pointed at the run's home and database (for the in-process publish / rollback)."""
    for k, v in {"CXW_HOME": str(pg_run["home"]), "CXW_DBT_TARGET": "postgres", "CXW_PG_DBNAME": pg_run["db"],
                 "CXW_PG_ROLE_PREFIX": pg_run["prefix"], "CXW_PG_HOST": "127.0.0.1", "CXW_PG_USER": "postgres"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CXW_PG_PASSWORD", raising=False)
    return pg_run


def _rows(conn, query: str, params=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def test_the_dag_publishes_into_the_serving_schemas_on_postgres(pg_run):
    assert pg_run["state"] == "success", pg_run["log"].read_text()[-6000:]
    home = pg_run["home"]
    # no DuckDB build or published file: every step read PostgreSQL (demo inputs aside)
    assert not [f for f in pg_run["duck_files_after_pg"] if not f.startswith("demo/")], pg_run["duck_files_after_pg"]
    conn = _connect(pg_run["db"])
    try:
        gen = _rows(conn, "select generation_id, built_by_run from bi_meta.publication")
        assert len(gen) == 1 and gen[0][1]
        published = dict(_rows(conn, "select table_name, row_count from bi_meta.publication_tables"))
        assert {"kpi.kpi_daily", "kpi.kpi_period", "cx.cx_detractor_alerts"} <= set(published)
        for name, n in published.items():  # the serving copy equals the audited build table
            s, t = name.split(".")
            assert _rows(conn, f'select count(*) from "bi_{s}"."{t}"')[0][0] == n
            assert _rows(conn, f'select count(*) from "{s}"."{t}"')[0][0] == n
    finally:
        conn.close()
    summary = json.loads(next((home / "runs").glob("*/summary.json")).read_text())
    assert summary["status"] == "published" or summary["publication"]["status"] == "published", summary["status"]
    assert summary["headline_kpis"], "the summary read no headline KPI from the serving schema"
    assert summary["validation"]["target"] == "postgres"


def _kpis(rows: list[tuple], width: int) -> dict:
    return {tuple(str(v) for v in r[:width]): r[width:] for r in rows}


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) or type(a).__name__ == "Decimal":
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return str(a) == str(b)


def test_postgres_kpis_equal_the_duckdb_pipelines_on_the_same_loads(pg_run):
    import duckdb

    duck = pg_run["duck"]
    assert duck.returncode == 0 and '"published"' in duck.stdout, duck.stdout[-3000:] + duck.stderr[-5000:]
    keys = {"kpi_daily": ["kpi", "kpi_date", "channel", "segment"],
            "kpi_period": ["kpi", "grain", "period_start", "channel", "segment"]}
    conn = _connect(pg_run["db"])
    con = duckdb.connect(str(pg_run["home"] / "published" / "cx_warehouse.duckdb"), read_only=True)
    try:
        for table, key in keys.items():
            cols = [c for c, in con.execute("select column_name from information_schema.columns where table_schema "
                                            "= 'kpi' and table_name = ? order by ordinal_position", [table]).fetchall()]
            assert cols == [c for c, in _rows(conn, "select column_name from information_schema.columns where "
                                              "table_schema = 'bi_kpi' and table_name = %s order by ordinal_position",
                                              [table])]
            rest = [c for c in cols if c not in key]
            select = ", ".join(f'"{c}"' for c in key + rest)
            d = _kpis(con.execute(f"select {select} from kpi.{table}").fetchall(), len(key))
            p = _kpis(_rows(conn, f"select {select} from bi_kpi.{table}"), len(key))
            assert len(d) > 100 and set(d) == set(p), (table, sorted(set(d) ^ set(p))[:10])
            diff = [(k, c, d[k][i], p[k][i]) for k in d for i, c in enumerate(rest) if not _equal(d[k][i], p[k][i])]
            assert not diff, f"{table}: {len(diff)} values differ, e.g. {diff[:5]}"
    finally:
        con.close()
        conn.close()


def test_alerts_are_exported_from_the_serving_schema(pg_env):
    from cxw.alerts import read_exported_ids
    from cxw.alerts import pending_alerts

    conn = _connect(pg_env["db"])
    try:
        ids = {r[0] for r in _rows(conn, "select alert_id from bi_cx.cx_detractor_alerts")}
    finally:
        conn.close()
    assert ids and ids <= set(read_exported_ids())
    assert pending_alerts() == 0


def test_a_bi_session_sees_one_generation_during_a_publish_and_rollback_swaps_back(pg_env):
    from psycopg2 import sql

    from cxw import publish_postgres as pgp
    from cxw.publish import rollback

    db, prefix = pg_env["db"], pg_env["prefix"]
    owner = _connect(db)
    owner.autocommit = True
    old = _rows(owner, "select generation_id from bi_meta.publication")[0][0]
    # a new content (a better description of a build table) for a new generation, no rebuild
    with owner.cursor() as cur:
        cur.execute("comment on table kpi.kpi_daily is %s", [f"Daily KPIs ({uuid.uuid4().hex[:6]})."])
        cur.execute(sql.SQL("create role {} login").format(sql.Identifier(f"{prefix}bi_reader")))
        cur.execute(sql.SQL("grant {} to {}").format(sql.Identifier(f"{prefix}executive"),
                                                     sql.Identifier(f"{prefix}bi_reader")))
    bi = _connect(db, f"{prefix}bi_reader")
    try:
        # a BI session's transaction that has read the serving schema ...
        before = _rows(bi, "select generation_id from bi_meta.publication")[0][0]
        n_daily = _rows(bi, "select count(*) from bi_kpi.kpi_daily")[0][0]
        assert before == old
        result: dict = {}
        publisher = threading.Thread(target=lambda: result.update(pgp.publish("swap-test", None, None)))
        publisher.start()
        time.sleep(2.0)
        # ... keeps reading one generation: the swap waits for it
        assert publisher.is_alive(), f"the swap did not wait for the BI session: {result}"
        assert _rows(bi, "select count(*) from bi_kpi.kpi_period")[0][0] > 0
        assert _rows(bi, "select generation_id from bi_meta.publication")[0][0] == old
        bi.commit()  # the session ends its transaction: the swap goes through
        publisher.join(60)
        assert not publisher.is_alive() and result["status"] == "published", result
        new = result["generation_id"]
        # a new transaction of the same session sees the new generation, readable by its role after the swap
        assert _rows(bi, "select generation_id from bi_meta.publication")[0][0] == new != old
        assert _rows(bi, "select count(*) from bi_kpi.kpi_daily")[0][0] == n_daily
        bi.commit()
        kept = _rows(owner, "select nspname from pg_namespace where nspname like 'bi\\_%%\\_\\_g%%' order by 1")
        assert {f"bi_kpi__g{pgp.gen_key(old)}", f"bi_meta__g{pgp.gen_key(old)}"} <= {k for k, in kept}

        back = rollback()
        assert back == {**back, "from": new, "to": old}
        assert _rows(bi, "select generation_id from bi_meta.publication")[0][0] == old
        assert _rows(bi, "select count(*) from bi_kpi.kpi_daily")[0][0] == n_daily
        bi.commit()
        assert f"bi_meta__g{pgp.gen_key(new)}" in {k for k, in _rows(
            owner, "select nspname from pg_namespace where nspname like 'bi\\_meta\\_\\_g%%'")}
    finally:
        bi.close()
        owner.close()
