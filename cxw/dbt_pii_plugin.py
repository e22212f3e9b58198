"""dbt-duckdb plugin (profiles.yml, output `duckdb`): hands the PII salt to the build database at run time.

The salt (CXW_PII_SALT) must not appear in compiled SQL: not in dbt's target/ (compiled / run SQL, manifest,
partial-parse state), not in dbt's logs, not in the build database's view definitions, not in Data Docs. So the models
never see its value: `hash_pii` (macros/pii.sql) reads it with `(select salt from _cxw.pii_salt)`, and this plugin
writes that one-row table with a bound parameter when dbt opens the build database (so every `dbt` invocation on the
DuckDB target has it, also one run by hand or by a test). Schema `_cxw` is never published (cxw.publish copies
core, kpi and cx only). On PostgreSQL the same table is filled by the on-run-start hook from the session setting
`cxw.pii_salt`, which cxw.dbt passes in PGOPTIONS (macros/pii.sql `cxw_pii_salt_table`).
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from cxw.pii import pii_salt  # CXW_PII_SALT, or the public demo salt (refused against real systems: cxw.pii)


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        conn.execute("create schema if not exists _cxw")
        conn.execute("create or replace table _cxw.pii_salt as select ?::varchar as salt", [pii_salt()])
