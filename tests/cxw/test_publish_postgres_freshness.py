"""The PostgreSQL publish writes `bi_meta.publication_freshness` as the DuckDB publish writes `publication_freshness`
(issue 20): one row per source from its staged tables, and a run that only re-reads the same records (a newer
`_extracted_at`) keeps the generation. A scratch database and a hand-made build (one mart, one staged GA4 table)."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.conftest import require_service
from tests.pg_scratch import PG_HOST, PG_PASSWORD, PG_PORT, PG_USER, drop_scratch
from tests.pg_scratch import connect as _connect

pytestmark = pytest.mark.services



@pytest.fixture
def pg_build(tmp_path, monkeypatch):
    require_service("postgres")
    tag = f"t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dbname, prefix = f"cxw_fresh_{tag}", f"cxwf_{tag}_"
    admin = _connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{dbname}"')
    cfg = tmp_path / "audiences.yml"
    cfg.write_text('audiences:\n  admin:\n    tables: "*"\n')
    for k, v in {"CXW_PG_HOST": PG_HOST, "CXW_PG_PORT": str(PG_PORT), "CXW_PG_USER": PG_USER,
                 "CXW_PG_PASSWORD": PG_PASSWORD, "CXW_PG_DBNAME": dbname, "CXW_PG_ROLE_PREFIX": prefix,
                 "CXW_AUDIENCES_FILE": str(cfg), "CXW_HOME": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    conn = _connect(dbname)
    with conn, conn.cursor() as cur:
        cur.execute("create schema kpi; create schema staging")
        cur.execute("create table kpi.kpi_daily as select 'nps'::text as kpi, 10.0::double precision as value")
        cur.execute("create table staging.stg_ga4__events (event_at timestamptz, _extracted_at timestamptz)")
        cur.execute("insert into staging.stg_ga4__events values ('2025-06-30 13:11:00+00', '2025-06-30 14:05:00+00')")
    try:
        yield conn
    finally:
        conn.close()
        drop_scratch(admin, dbname, prefix)


def test_postgres_publish_writes_publication_freshness_and_a_reread_keeps_the_generation(pg_build):
    from cxw.publish_postgres import publish

    first = publish("run-1", "2025-06-30T13:00:00+00:00", "2025-06-30T14:00:00+00:00")
    assert first["status"] == "published"
    with pg_build, pg_build.cursor() as cur:
        cur.execute("select source, max_event_at, loaded_at, as_of, is_partial_day from bi_meta.publication_freshness")
        rows = cur.fetchall()
        cur.execute("select obj_description('bi_meta.publication_freshness'::regclass)")
        described = cur.fetchone()[0]
    assert [(r[0], r[1].isoformat(), r[2].isoformat(), r[3], r[4]) for r in rows] == [
        ("ga4", "2025-06-30T13:11:00", "2025-06-30T14:05:00", "2025-06-30T14:00:00+00:00", True)]
    assert described and "fresh" in described
    with pg_build, pg_build.cursor() as cur:  # the same records read again later: only _extracted_at moves
        cur.execute("update staging.stg_ga4__events set _extracted_at = '2025-06-30 15:05:00+00'")
    again = publish("run-2", "2025-06-30T13:00:00+00:00", "2025-06-30T14:00:00+00:00")
    assert again["status"] == "unchanged" and again["generation_id"] == first["generation_id"]
    with pg_build, pg_build.cursor() as cur:  # a newer event is new content
        cur.execute("insert into staging.stg_ga4__events values ('2025-06-30 13:40:00+00', '2025-06-30 15:05:00+00')")
    third = publish("run-3", "2025-06-30T13:00:00+00:00", "2025-06-30T14:00:00+00:00")
    assert third["status"] == "published"
    with pg_build, pg_build.cursor() as cur:
        cur.execute("select max_event_at from bi_meta.publication_freshness")
        assert cur.fetchone()[0].isoformat() == "2025-06-30T13:40:00"
