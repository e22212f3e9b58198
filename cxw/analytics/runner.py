"""Runs the registered analyses (registry.ANALYSES) on the build database and replaces their output tables in the
marts schema `cx`, in one transaction (docs/analytics.md). Target-agnostic: DuckDB (the default) or PostgreSQL
(CXW_DBT_TARGET=postgres); each target has one small open function and one small write function."""

from __future__ import annotations

import inspect
import logging
import time
from datetime import date, datetime

import pandas as pd

from . import Analysis, AnalysisContext

log = logging.getLogger(__name__)

OUTPUT_SCHEMA = "cx"  # where the analyses' tables go: a published schema (cxw.publish.PUBLISHED_SCHEMAS)
READ_SCHEMAS = ("core", "kpi", "cx", "intermediate")  # where relation() looks a mart up, in this order
SEED = 19  # the fixed seed of every random step (issue 19): same build -> identical tables


def run_analyses(target: str | None = None, as_of: date | datetime | str | None = None, seed: int = SEED,
                 analyses: tuple[Analysis, ...] | None = None, build_db=None, dsn: str | None = None, *,
                 every: str = "run", force: bool = False, run_id: str | None = None) -> dict:
    """Run ``analyses`` (default: every registered one) on the build database of ``target`` (default: the dbt
    target, CXW_DBT_TARGET) as of ``as_of`` (default: today; a datetime counts by its UTC date) and replace their
    output tables. Returns ``{analysis: {table: rows}}`` plus ``seconds``, ``as_of`` and ``decision`` (why they
    were computed). ``every="day"`` (CXW_ANALYZE_EVERY, cxw.analytics.reuse): when the build database's record says
    an earlier run computed them as of the same date with the same inputs, keep its tables and return
    ``{"kept_from": {as_of, run_id, computed_at}, "decision", "as_of", "seconds"}`` instead."""
    from ..config import dbt_target, paths
    from . import reuse
    from .registry import ANALYSES

    target = target or dbt_target()
    analyses = ANALYSES if analyses is None else analyses
    as_of = _as_date(as_of)
    t0 = time.perf_counter()
    if target == "duckdb":
        con = _open_duckdb(build_db or paths().build_db)
        write = _write_duckdb
    elif target == "postgres":
        con = _open_postgres(dsn)
        write = _write_postgres
    else:
        raise ValueError(f"CXW_DBT_TARGET={target!r}: the analyses know 'duckdb' and 'postgres'")
    try:
        after = None
        if target == "duckdb":  # the record of what the tables were computed with (cxw.analytics.reuse)
            ins = reuse.inputs(con, analyses, seed, target, as_of)
            decision = reuse.decide(con, as_of, ins, [t for a in analyses for t in a.outputs], OUTPUT_SCHEMA,
                                    every=every, force=force, target=target)
            if not decision["compute"]:
                log.info("analyses kept: %s", decision["reason"])
                return {"kept_from": decision["kept_from"], "decision": decision["reason"],
                        "as_of": as_of.isoformat(), "seconds": round(time.perf_counter() - t0, 3)}
            reuse.clear(con)  # a failed analyze leaves no record

            def after(c):
                reuse.write(c, as_of, ins, run_id)
        else:
            decision = reuse.decide(None, as_of, {}, [], OUTPUT_SCHEMA, every=every, force=force, target=target)
        log.info("analyses computed: %s", decision["reason"])
        read = _reader(con, target)
        ctx = AnalysisContext(as_of=as_of, seed=seed, relation=_relations(read))
        report: dict = {}
        tables: dict[str, pd.DataFrame] = {}
        for a in analyses:
            t1, c1 = time.perf_counter(), time.process_time()
            out = a.run(read, ctx)
            if set(out) != set(a.outputs):
                raise RuntimeError(f"analysis {a.name} returned {sorted(out)}, declared {sorted(a.outputs)}")
            for name, frame in out.items():
                if not name.startswith("cx_"):
                    raise RuntimeError(f"analysis {a.name}: output table {name} must start with cx_")
                tables[name] = frame
            report[a.name] = {name: len(frame) for name, frame in out.items()}
            log.info("analysis %s: %s in %.1fs (%.1f CPU-s, this process)", a.name, report[a.name],
                     time.perf_counter() - t1, time.process_time() - c1)
        known = _docs(analyses)
        docs = {t: ((known.get(t, ("", {}))[0] or "Output of an analysis after dbt (docs/analytics.md).")
                    + f" Computed as of {as_of.isoformat()} (the build's data interval end date; with "
                    "CXW_ANALYZE_EVERY=day later runs of that date keep it).",
                    known.get(t, ("", {}))[1]) for t in tables}
        if after is None:
            write(con, tables, docs)
        else:
            write(con, tables, docs, after)
    finally:
        con.close()
    report["as_of"] = as_of.isoformat()
    report["decision"] = decision["reason"]
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _as_date(value) -> date:
    if value is None:
        return date.today()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        from datetime import timezone

        return (value.astimezone(timezone.utc) if value.tzinfo else value).date()
    return value


def _docs(analyses) -> dict[str, tuple[str, dict[str, str]]]:
    """Table and column descriptions: each analysis module's TABLE_DOCS ({table: (text, {column: text})})."""
    docs: dict = {}
    for a in analyses:
        docs.update(getattr(inspect.getmodule(a.run), "TABLE_DOCS", {}) or {})
    return docs


def _relations(read):
    found = read("select table_schema, table_name from information_schema.tables "
                 f"where table_schema in ({', '.join(repr(s) for s in READ_SCHEMAS)})")
    where: dict[str, str] = {}
    for schema in READ_SCHEMAS:  # the first schema in READ_SCHEMAS order that has the table
        for name in found.loc[found["table_schema"] == schema, "table_name"]:
            where.setdefault(str(name), schema)

    def relation(name: str) -> str:
        if name not in where:
            raise LookupError(f"no relation {name!r} in schemas {READ_SCHEMAS} of the build database")
        return f'"{where[name]}"."{name}"'
    return relation


def _reader(con, target: str):
    if target == "duckdb":
        return lambda sql: con.execute(sql).df()

    def read(sql: str) -> pd.DataFrame:
        with con.cursor() as cur:
            cur.execute(sql)
            cols = [c.name for c in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)
    return read


# ---- DuckDB
def _open_duckdb(db):
    from ..loader import connect_build_db

    con, _ = connect_build_db(db)  # a writer: waits for the build database's lock like every task
    return con


def _write_duckdb(con, tables: dict[str, pd.DataFrame], docs: dict, after=None) -> None:
    con.execute("begin transaction")
    try:
        con.execute(f'create schema if not exists "{OUTPUT_SCHEMA}"')
        for name, frame in tables.items():
            con.register("_cxw_analysis_frame", frame)
            con.execute(f'create or replace table "{OUTPUT_SCHEMA}"."{name}" as select * from _cxw_analysis_frame')
            con.unregister("_cxw_analysis_frame")
            text, cols = docs.get(name, ("", {}))
            con.execute(f'comment on table "{OUTPUT_SCHEMA}"."{name}" is '
                        + _sql_str(text or "Output of an analysis after dbt (docs/analytics.md)."))
            for c in frame.columns:
                con.execute(f'comment on column "{OUTPUT_SCHEMA}"."{name}"."{c}" is '
                            + _sql_str(cols.get(c) or "See docs/analytics.md."))
        if after is not None:  # the record goes with the tables, in their transaction
            after(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---- PostgreSQL
def _open_postgres(dsn: str | None):
    import psycopg2

    from ..loader_postgres import pg_dsn

    con = psycopg2.connect(dsn or pg_dsn())
    con.autocommit = False
    return con


_PG_TYPES = {"int64": "bigint", "float64": "double precision", "bool": "boolean"}


def _pg_type(dtype) -> str:
    if isinstance(dtype, pd.ArrowDtype) and "date" in str(dtype):
        return "date"
    return _PG_TYPES.get(str(dtype), "text")


def _write_postgres(con, tables: dict[str, pd.DataFrame], docs: dict) -> None:
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    try:
        with con.cursor() as cur:
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(OUTPUT_SCHEMA)))
            for name, frame in tables.items():
                rel = sql.Identifier(OUTPUT_SCHEMA, name)
                cur.execute(sql.SQL("drop table if exists {}").format(rel))
                cur.execute(sql.SQL("create table {} ({})").format(rel, sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(t)))
                    for c, t in frame.dtypes.items())))
                rows = [tuple(None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in r)
                        for r in frame.itertuples(index=False, name=None)]
                if rows:
                    execute_values(cur, sql.SQL("insert into {} values %s").format(rel).as_string(cur), rows)
                text, cols = docs.get(name, ("", {}))
                cur.execute(sql.SQL("comment on table {} is %s").format(rel),
                            [text or "Output of an analysis after dbt (docs/analytics.md)."])
                for c in frame.columns:
                    cur.execute(sql.SQL("comment on column {}.{} is %s").format(rel, sql.Identifier(c)),
                                [cols.get(c) or "See docs/analytics.md."])
        con.commit()
    except BaseException:
        con.rollback()
        raise
