"""Access by audience on the PostgreSQL serving target (issue 18.4): the audiences of access/audiences.yml become roles
with GRANTs and row-level security (`cxw.access.apply_postgres_access`, `./cx pg-access`). Against the local
PostgreSQL: an allowed read works, a denied table or column raises permission denied, RLS hides the rows of other
support teams (channels) and of persons without an alert, and applying twice is idempotent.

The marts are the real published ones (the dashboard tests' raw fixture through `dbt build` and publish), copied into
a throwaway database; roles and database carry this test's unique prefix and are dropped after."""

from __future__ import annotations

import os
import uuid

import duckdb
import pytest

from tests.conftest import require_service
from tests.pg_scratch import drop_scratch
from tests.pg_scratch import connect as _connect
from tests.dashboard.conftest import published_home  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.services
PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
            "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
            "SMALLINT": "smallint", "FLOAT": "real"}



def _pg_type(t: str) -> str:
    return "numeric" if t.startswith("DECIMAL") else PG_TYPES.get(t, "text")


@pytest.fixture(scope="module")
def pg(published_home):
    require_service("postgres")
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    tag = f"t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dbname, prefix = f"cxw_access_{tag}", f"cxwt_{tag}_"
    users = {"agent_email": f"{prefix}u_agent_email", "agent_none": f"{prefix}u_agent_none",
             "executive": f"{prefix}u_exec", "analyst": f"{prefix}u_analyst"}
    admin = _connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    conn = _connect(dbname)
    try:
        duck = duckdb.connect(str(published_home / "published" / "cx_warehouse.duckdb"), read_only=True)
        try:
            tables = duck.execute("select table_schema, table_name from information_schema.tables where "
                                  "table_schema in ('core', 'kpi', 'cx') order by 1, 2").fetchall()
            with conn.cursor() as cur:
                for s, t in tables:
                    cols = duck.execute(f'describe "{s}"."{t}"').fetchall()
                    cur.execute(f'create schema if not exists "{s}"')
                    cur.execute(f'create table "{s}"."{t}" (' + ", ".join(f'"{c[0]}" {_pg_type(c[1])}' for c in cols)
                                + ")")
                    rows = duck.execute(f'select * from "{s}"."{t}"').fetchall()
                    if rows:
                        execute_values(cur, f'insert into "{s}"."{t}" values %s', rows)
        finally:
            duck.close()
        conn.commit()
        from cxw.access import apply_postgres_access

        report = apply_postgres_access(conn, prefix=prefix)
        with conn.cursor() as cur:
            for key, user in users.items():
                role = f"{prefix}cx_agent" if key.startswith("agent") else f"{prefix}{key}"
                cur.execute(sql.SQL("create role {} login").format(sql.Identifier(user)))
                cur.execute(sql.SQL("grant {} to {}").format(sql.Identifier(role), sql.Identifier(user)))
            cur.execute("insert into cxw_access.row_scopes values (%s, 'cx.cx_detractor_alerts', 'email')",
                        [users["agent_email"]])
        conn.commit()
        yield {"db": dbname, "conn": conn, "prefix": prefix, "users": users, "report": report}
    finally:
        conn.close()
        drop_scratch(admin, dbname, prefix)


def _as(pg, key: str, query: str):
    """Rows of ``query`` read by the login user ``key`` in their own connection."""
    conn = _connect(pg["db"], pg["users"][key])
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def _owner(pg, query: str):
    with pg["conn"].cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    pg["conn"].commit()
    return rows


def test_allowed_reads_work_and_denied_reads_raise_permission_denied(pg):
    import psycopg2

    window = _owner(pg, "select count(*) from kpi.kpi_period")[0][0]
    assert window > 0
    assert _as(pg, "executive", "select count(*) from kpi.kpi_period")[0][0] == window
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "executive", "select * from cx.cx_detractor_alerts")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "executive", "select * from core.dim_customers")
    # analyst: every table, but not the denied columns
    assert _as(pg, "analyst", "select count(*) from core.dim_customers")[0][0] == \
        _owner(pg, "select count(*) from core.dim_customers")[0][0]
    assert _as(pg, "analyst", "select count(email_hash) from core.dim_customers")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "analyst", "select hubspot_contact_id from core.dim_customers")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "analyst", "select comment from cx.cx_detractor_alerts")
    # the agent: three columns of dim_customers, nothing else of it, no KPI table
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "agent_email", "select email_hash from core.dim_customers")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "agent_email", "select * from kpi.kpi_period")


def test_row_level_security_scopes_the_agents_rows_by_their_teams_channels(pg):
    by_channel = dict(_owner(pg, "select channel, count(*) from cx.cx_detractor_alerts group by 1"))
    assert by_channel.get("email") and len(by_channel) >= 2, by_channel  # other channels' rows exist to hide
    assert _as(pg, "agent_email", "select channel, count(*) from cx.cx_detractor_alerts group by 1") == \
        [("email", by_channel["email"])]
    assert _as(pg, "agent_none", "select count(*) from cx.cx_detractor_alerts") == [(0,)]
    # the contact ids: only the persons of the alerts the agent may see
    want = _owner(pg, "select count(*) from core.dim_customers where person_sk in (select person_sk from "
                      "cx.cx_detractor_alerts where channel = 'email')")[0][0]
    assert 0 < want < _owner(pg, "select count(*) from core.dim_customers")[0][0]
    assert _as(pg, "agent_email", "select count(*) from (select person_sk, hubspot_contact_id, odoo_partner_id "
                                  "from core.dim_customers) c") == [(want,)]
    # other audiences reading a table with row security keep all its rows
    assert _as(pg, "analyst", "select count(*) from cx.cx_detractor_alerts")[0][0] == sum(by_channel.values())


def test_applying_again_is_idempotent_and_revokes_what_the_configuration_no_longer_grants(pg, tmp_path):
    import psycopg2

    from cxw.access import apply_postgres_access, load_audiences

    again = apply_postgres_access(pg["conn"], prefix=pg["prefix"])
    assert again == pg["report"]
    assert _as(pg, "executive", "select count(*) from kpi.kpi_period")[0][0] > 0
    cfg = tmp_path / "audiences.yml"
    cfg.write_text("audiences:\n  executive:\n    tables:\n      kpi.kpi_dictionary: {}\n")
    apply_postgres_access(pg["conn"], prefix=pg["prefix"], audiences=load_audiences(cfg))
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg, "executive", "select * from kpi.kpi_period")
    assert _as(pg, "executive", "select count(*) from kpi.kpi_dictionary")[0][0] > 0
    apply_postgres_access(pg["conn"], prefix=pg["prefix"])  # back to the repository's configuration
    assert _as(pg, "executive", "select count(*) from kpi.kpi_period")[0][0] > 0
