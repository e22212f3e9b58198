"""A throwaway PostgreSQL database and roles for one test: the connection settings tests use, and the clean-up that
drops the database and every role under the test's prefix (shared by the PostgreSQL publish and access tests)."""

from __future__ import annotations

import os

from tests.conftest import SERVICES

PG_HOST, PG_PORT = SERVICES["postgres"]
PG_USER = os.environ.get("CXW_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("CXW_TEST_PG_PASSWORD", "")


def connect(dbname: str, user: str = PG_USER):
    import psycopg2

    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, password=PG_PASSWORD, dbname=dbname)


def drop_scratch(admin, dbname: str, prefix: str) -> None:
    """Drop the test's database and its roles (`prefix`…, `_` matched literally), then close `admin`."""
    from psycopg2 import sql

    with admin.cursor() as cur:
        cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
        cur.execute("select rolname from pg_roles where rolname like %s", [prefix.replace("_", r"\_") + "%"])
        for (role,) in cur.fetchall():
            cur.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
    admin.close()
