"""The PostgreSQL publish's swap waits for BI transactions (issue 21.1, cxw/publish_postgres.py): a BI session whose
transaction has read a serving table keeps reading that generation until it ends; the publish waits on the lock, and
the session's next transaction sees the new generation.

The cheap, focused form of tests/e2e/test_postgres_pipeline.py's BI-session test (that one runs the DAG on
PostgreSQL first): the real `publish_postgres.publish` against the local PostgreSQL, on hand-made build schemas
(core, kpi, cx) in a throwaway database; roles and database carry this test's unique prefix and are dropped after."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from tests.conftest import require_service
from tests.pg_scratch import PG_HOST, PG_PASSWORD, PG_PORT, PG_USER, drop_scratch
from tests.pg_scratch import connect as _connect

pytestmark = pytest.mark.services



def _rows(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


@pytest.fixture
def pg_build(monkeypatch, tmp_path):
    """A throwaway database holding a small build (core, kpi, cx) and this process's settings pointed at it."""
    require_service("postgres")
    from psycopg2 import sql

    tag = f"t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dbname, prefix = f"cxw_swap_{tag}", f"cxws_{tag}_"
    admin = _connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    for k, v in {"CXW_HOME": str(tmp_path), "CXW_DBT_TARGET": "postgres", "CXW_PG_HOST": PG_HOST,
                 "CXW_PG_PORT": str(PG_PORT), "CXW_PG_USER": PG_USER, "CXW_PG_DBNAME": dbname,
                 "CXW_PG_ROLE_PREFIX": prefix, "CXW_BUILD_DB_LOCK_WAIT_S": "60"}.items():
        monkeypatch.setenv(k, v)
    if PG_PASSWORD:
        monkeypatch.setenv("CXW_PG_PASSWORD", PG_PASSWORD)
    else:
        monkeypatch.delenv("CXW_PG_PASSWORD", raising=False)
    owner = _connect(dbname)
    owner.autocommit = True
    try:
        with owner.cursor() as cur:
            for s in ("core", "kpi", "cx"):
                cur.execute(f"create schema {s}")
            cur.execute("create table core.dim_dates (date_day date)")
            cur.execute("insert into core.dim_dates values ('2025-03-01'), ('2025-03-02')")
            cur.execute("create table kpi.kpi_daily (kpi_date date, kpi_name text, kpi_value double precision)")
            cur.execute("insert into kpi.kpi_daily values ('2025-03-01', 'nps', 20), ('2025-03-02', 'nps', 25)")
            cur.execute("create table cx.cx_detractor_alerts (person_sk text, channel text)")
            cur.execute("create table core.dim_customers (person_sk text, hubspot_contact_id text, "
                        "odoo_partner_id text)")
        yield {"db": dbname, "owner": owner}
    finally:
        owner.close()
        drop_scratch(admin, dbname, prefix)


def test_a_bi_transaction_keeps_reading_one_generation_while_the_publish_swap_waits_for_it(pg_build):
    from cxw import publish_postgres as pgp

    first = pgp.publish("first", None, None)
    assert first["status"] == "published", first
    old = first["generation_id"]
    owner = pg_build["owner"]
    with owner.cursor() as cur:        # new content: the next publish makes a new generation
        cur.execute("insert into kpi.kpi_daily values ('2025-03-03', 'nps', 30)")

    bi = _connect(pg_build["db"])      # a BI session (not autocommit: its reads form one transaction)
    try:
        assert _rows(bi, "select generation_id from bi_meta.publication") == [(old,)]
        assert _rows(bi, "select count(*) from bi_kpi.kpi_daily") == [(2,)]
        result: dict = {}
        publisher = threading.Thread(target=lambda: result.update(pgp.publish("second", None, None)))
        publisher.start()
        # until the publish waits on a lock or has finished (a swap that does not lock finishes without waiting)
        deadline = time.monotonic() + 60
        waiting = False
        while publisher.is_alive() and time.monotonic() < deadline and not waiting:
            waiting = bool(_rows(owner, "select 1 from pg_stat_activity where datname = current_database() and "
                                        "wait_event_type = 'Lock' and query ilike 'lock table%'"))
            time.sleep(0.1)
        assert waiting and publisher.is_alive(), f"the swap did not wait for the BI session's transaction: {result}"
        # the BI transaction still reads the generation it started with, whole
        assert _rows(bi, "select generation_id from bi_meta.publication") == [(old,)]
        assert _rows(bi, "select count(*) from bi_kpi.kpi_daily") == [(2,)]
        bi.commit()                    # the transaction ends: the swap goes through
        publisher.join(60)
        assert not publisher.is_alive() and result["status"] == "published", result
        new = result["generation_id"]
        assert new != old
        assert _rows(bi, "select generation_id from bi_meta.publication") == [(new,)]
        assert _rows(bi, "select count(*) from bi_kpi.kpi_daily") == [(3,)]
        bi.commit()
    finally:
        bi.close()
