"""Issue 17 point 5 on DuckDB, at the level of one model: the PII salt is read at run time from `_cxw.pii_salt`, never
inlined into SQL - no compiled or run SQL, dbt log, partial parse or view definition holds it.

The cheap, focused form of the salt checks of tests/cxw/test_docs.py (a full build, publish and dbt docs) and
tests/dbt/test_postgres_target.py (builds on both targets): the hand-made raw fixture, real dbt running the two
staging models that hash PII from the CRM and the ERP, a distinctive salt found by a plain byte search if it leaks."""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env  # noqa: E402

SALT = "zq-model-salt-4e7b19"


def test_the_pii_salt_is_in_no_compiled_sql_log_or_view_definition_of_a_hashing_model(tmp_path):
    db = tmp_path / "build.duckdb"
    raw_fixture.build(db)
    env = {**_env(tmp_path, db), "CXW_PII_SALT": SALT}
    _dbt(env, "run", "--select", "base_hubspot__contacts", "base_odoo__res_partners")

    leaked = [str(f) for f in tmp_path.rglob("*")
              if f.is_file() and f != db and not f.name.startswith(db.name) and SALT.encode() in f.read_bytes()]
    assert leaked == []      # target/ (compiled + run SQL, manifest, partial parse) and logs/dbt.log
    con = duckdb.connect(str(db), read_only=True)
    try:
        for what, col in (("duckdb_views()", "sql"), ("duckdb_tables()", "sql"),
                          ("duckdb_functions() where macro_definition is not null", "macro_definition")):
            where = "and" if "where" in what else "where"
            assert con.execute(f"select count(*) from {what} {where} {col} like ?", [f"%{SALT}%"]).fetchone() == (0,)
        # the salt was in use: the build holds it, the models' views read it
        assert con.execute("select salt from _cxw.pii_salt").fetchall() == [(SALT,)]
        assert con.execute("select count(*) from duckdb_views() where sql like '%_cxw.pii_salt%'").fetchone()[0] > 0
    finally:
        con.close()
