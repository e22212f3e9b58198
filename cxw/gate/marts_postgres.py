"""The marts gate on the PostgreSQL target: the candidate marts of the build schemas core, kpi, cx (what dbt wrote),
read into pandas and checked by the same suites as on DuckDB (`marts._table_checks`, GE's pandas engine: one
engine for both targets); row counts compared with the serving generation's `bi_meta.publication_tables`."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from ..publish import PUBLISHED_SCHEMAS
from .ge import Gate, finish
from .marts import _as_date, _table_checks

# PostgreSQL's text types, as the PII checks see a VARCHAR column on DuckDB
_TEXT_TYPES = ("text", "character varying", "character")


def audit_marts_postgres(run_id: str, out_dir: Path, max_drop: float, end: date | None,
                         schemas: tuple[str, ...] = PUBLISHED_SCHEMAS) -> dict:
    from .. import publish_postgres as pg

    t0 = time.perf_counter()
    gate = Gate(out_dir, "marts")
    read_s = 0.0
    conn = pg.connect()
    try:
        conn.set_session(readonly=True, isolation_level="REPEATABLE READ")  # one snapshot of the whole build
        with conn.cursor() as cur:
            previous = pg.published_row_counts(cur)
            built = pg.read_build_info(cur)
            end = _as_date(built["data_interval_end"]) if built and built.get("data_interval_end") else end
            cur.execute("select table_schema, table_name from information_schema.tables "
                        "where table_schema = any(%s) order by 1, 2", [list(schemas)])
            tables = cur.fetchall()
            results: list[dict] = []
            for schema, table in tables:
                name = f"{schema}.{table}"
                t1 = time.perf_counter()
                df = _read_table(cur, schema, table, end)
                read_s += time.perf_counter() - t1
                cur.execute("select column_name from information_schema.columns where table_schema = %s "
                            "and table_name = %s and data_type = any(%s) order by ordinal_position",
                            [schema, table, list(_TEXT_TYPES)])
                strings = [c for c, in cur.fetchall()]
                checks = _table_checks(name, list(df.columns), strings, previous, max_drop)
                if checks:
                    results += gate.run(name, name, df, checks, run_id)
        conn.rollback()
    finally:
        conn.close()
    return finish("marts", run_id, results, out_dir, gate, t0,
                  {"read_seconds": round(read_s, 2), "compared_with_published": bool(previous),
                   "target": "postgres"})


def _read_table(cur, schema: str, table: str, end: date | None):
    """The whole table as a pandas frame with DuckDB's column kinds: numeric → float, date → datetime64
    (psycopg2 gives Decimal and datetime.date objects); `kpi.kpi_daily` gets `_days_before_interval_end`."""
    import pandas as pd

    cur.execute(f'select * from "{schema}"."{table}"')
    cols = [d.name for d in cur.description]
    df = pd.DataFrame.from_records(cur.fetchall(), columns=cols)
    for c in df.columns:
        s = df[c].dropna()
        if len(s) and isinstance(s.iloc[0], Decimal):
            df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), None), errors="coerce").astype(float)
    if f"{schema}.{table}" == "kpi.kpi_daily" and end is not None and "kpi_date" in df.columns and len(df):
        df["_days_before_interval_end"] = (pd.Timestamp(end) - pd.to_datetime(df["kpi_date"])).dt.days
    return df
