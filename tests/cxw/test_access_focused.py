"""Access by audience (issue 18), each rule on a few hand-made rows: the cheap, focused form of
tests/cxw/test_access_audiences.py and tests/cxw/test_access_postgres.py (which read the real published marts of a
full dbt build). The real configuration (access/audiences.yml) and the real code: the publish writing each
audience's DuckDB file beside the published generation, `apply_postgres_access` on the local PostgreSQL (a throwaway
database; roles and database carry this test's unique prefix and are dropped after)."""

from __future__ import annotations

import os
import uuid

import duckdb
import pytest

from tests.conftest import require_service
from tests.pg_scratch import drop_scratch
from tests.pg_scratch import connect as _connect


ALERTS = [("p1", "email", "late again"), ("p2", "survey", "rude agent"), ("p3", "email", "broken box")]
CUSTOMERS = [("p1", "h1", "o1", "e1"), ("p2", "h2", "o2", "e2"), ("p3", "h3", "o3", "e3"), ("p4", "h4", "o4", "e4")]


def test_the_analysts_file_leaves_out_the_source_ids_and_comments_the_admins_keeps_them(empty_build_db):
    from cxw.publish import publish

    p, con = empty_build_db
    con.execute("create schema core; create schema cx")
    con.execute("create table core.dim_customers (person_sk varchar, hubspot_contact_id varchar, "
                "odoo_partner_id varchar, email_hash varchar)")
    con.executemany("insert into core.dim_customers values (?, ?, ?, ?)", CUSTOMERS)
    con.execute("create table cx.cx_detractor_alerts (person_sk varchar, channel varchar, comment varchar)")
    con.executemany("insert into cx.cx_detractor_alerts values (?, ?, ?)", ALERTS)
    con.close()
    assert publish("run-1", None, None)["status"] == "published"
    columns = {}
    for name in ("analyst", "admin"):
        con = duckdb.connect(str(p.home / "published" / "audiences" / name / "cx_warehouse.duckdb"), read_only=True)
        try:
            columns[name] = {f"{s}.{t}": [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [s, t]).fetchall()]
                for s, t in (("core", "dim_customers"), ("cx", "cx_detractor_alerts"))}
        finally:
            con.close()
    assert columns["analyst"] == {"core.dim_customers": ["person_sk", "email_hash"],
                                  "cx.cx_detractor_alerts": ["person_sk", "channel"]}
    assert columns["admin"] == {"core.dim_customers": ["person_sk", "hubspot_contact_id", "odoo_partner_id",
                                                       "email_hash"],
                                "cx.cx_detractor_alerts": ["person_sk", "channel", "comment"]}



@pytest.mark.services
def test_on_postgres_each_agent_reads_only_the_alerts_of_the_channels_listed_for_them():
    require_service("postgres")
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    from cxw.access import apply_postgres_access

    tag = f"t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dbname, prefix = f"cxw_rowscope_{tag}", f"cxwr_{tag}_"
    users = {"email": f"{prefix}u_email", "survey": f"{prefix}u_survey", "none": f"{prefix}u_none"}
    admin = _connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    conn = _connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("create schema core; create schema cx")
            cur.execute("create table core.dim_customers (person_sk text, hubspot_contact_id text, "
                        "odoo_partner_id text, email_hash text)")
            execute_values(cur, "insert into core.dim_customers values %s", CUSTOMERS)
            cur.execute("create table cx.cx_detractor_alerts (person_sk text, channel text, comment text)")
            execute_values(cur, "insert into cx.cx_detractor_alerts values %s", ALERTS)
        conn.commit()
        apply_postgres_access(conn, prefix=prefix)
        with conn.cursor() as cur:
            for channel, user in users.items():
                cur.execute(sql.SQL("create role {} login").format(sql.Identifier(user)))
                cur.execute(sql.SQL("grant {} to {}").format(sql.Identifier(f"{prefix}cx_agent"),
                                                              sql.Identifier(user)))
                if channel != "none":
                    cur.execute("insert into cxw_access.row_scopes values (%s, 'cx.cx_detractor_alerts', %s)",
                                [user, channel])
        conn.commit()

        def read_as(user: str, query: str) -> list[tuple]:
            c = _connect(dbname, user)
            try:
                with c.cursor() as cur:
                    cur.execute(query)
                    return sorted(cur.fetchall())
            finally:
                c.close()

        alerts = "select person_sk, channel from cx.cx_detractor_alerts"
        assert read_as(users["email"], alerts) == [("p1", "email"), ("p3", "email")]
        assert read_as(users["survey"], alerts) == [("p2", "survey")]
        assert read_as(users["none"], alerts) == []
        # the contact ids: only the persons of the alerts the agent may see
        assert read_as(users["survey"], "select person_sk, hubspot_contact_id from core.dim_customers") == \
            [("p2", "h2")]
    finally:
        conn.close()
        drop_scratch(admin, dbname, prefix)
