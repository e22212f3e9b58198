"""Write-audit-publish on PostgreSQL (CXW_DBT_TARGET=postgres): what `cxw.publish` does with generation files, done
with schemas of the one database.

    core, kpi, cx                      the build: dbt writes them, the marts gate audits them (never read by BI)
    bi_core, bi_kpi, bi_cx, bi_meta    the serving schemas BI reads (`bi_kpi.kpi_daily`; `bi_meta.publication`,
                                       `bi_meta.publication_freshness`)
    bi_<schema>__next                  the copy being published (a crash leaves it; the next publish drops it)
    bi_<schema>__g<generation>         the previous generations, the last CXW_KEEP_GENERATIONS kept for rollback

Publish copies the audited build tables into the `__next` schemas (long, outside any lock BI notices), then in ONE
transaction takes ACCESS EXCLUSIVE locks on every serving table, renames each serving schema to its `__g<current
generation>` name and each `__next` schema to the serving name, and grants the audiences their roles' reads on the
new serving schemas (`cxw.access.apply_postgres_access`). A BI transaction that has read a serving table holds its
lock until it ends, so the swap waits for it: a BI session sees the old generation or the new one, never a mix.
Rollback swaps a kept generation back the same way. The build's record (`_cxw.build_info`) lives in the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import datetime, timezone

from .freshness import COLUMNS as FRESHNESS_COLUMNS
from .freshness import source_freshness
from .publish import KEEP_GENERATIONS, PUBLISHED_SCHEMAS, PUBLICATION_DOCS, content_fingerprint, parse_interval_end

log = logging.getLogger(__name__)

SERVING = {s: f"bi_{s}" for s in PUBLISHED_SCHEMAS}  # published schema -> serving schema
META = "bi_meta"  # publication, publication_tables, publication_freshness
ALL_SERVING = (*SERVING.values(), META)
NEXT = "__next"
GEN = "__g"
LOCK_TIMEOUT_MS = 10_000  # per lock attempt of the swap; the swap retries until CXW_BUILD_DB_LOCK_WAIT_S


def connect():
    import psycopg2

    from .loader_postgres import pg_dsn

    return psycopg2.connect(pg_dsn())


def gen_key(generation: str) -> str:
    """A generation id as a schema-name suffix (lower case, `_` for anything else than a letter or digit)."""
    return re.sub(r"[^a-z0-9]+", "_", generation.lower())


def _schema_exists(cur, name: str) -> bool:
    cur.execute("select 1 from pg_namespace where nspname = %s", [name])
    return cur.fetchone() is not None


def _tables(cur, schema: str) -> list[str]:
    cur.execute("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') order by 1", [schema])
    return [r[0] for r in cur.fetchall()]


# --- the build's record ----------------------------------------------------------------------------------------------

BUILD_INFO_COLUMNS = ("run_id", "data_interval_end", "kpi_window_start", "kpi_window_end", "build_fingerprint")


def clear_build_info() -> None:
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("create schema if not exists _cxw")
            cur.execute("drop table if exists _cxw.build_info")
    finally:
        conn.close()


def write_build_info(run_id, data_interval_end, kpi_window, build_fingerprint) -> None:
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("create schema if not exists _cxw")
            cur.execute("drop table if exists _cxw.build_info")
            cur.execute("create table _cxw.build_info (run_id text, data_interval_end text, kpi_window_start text, "
                        "kpi_window_end text, build_fingerprint text, built_at timestamp)")
            cur.execute("insert into _cxw.build_info values (%s, %s, %s, %s, %s, now() at time zone 'UTC')",
                        [run_id, data_interval_end, kpi_window[0], kpi_window[1], build_fingerprint])
    finally:
        conn.close()


def read_build_info(cur) -> dict | None:
    cur.execute("select to_regclass('_cxw.build_info')")
    if cur.fetchone()[0] is None:
        return None
    cur.execute(f"select {', '.join(BUILD_INFO_COLUMNS)} from _cxw.build_info")
    row = cur.fetchone()
    return dict(zip(BUILD_INFO_COLUMNS, row)) if row else None


# --- what is published -----------------------------------------------------------------------------------------------

def current_publication(cur) -> dict | None:
    cur.execute("select to_regclass(%s)", [f"{META}.publication"])
    if cur.fetchone()[0] is None:
        return None
    cur.execute(f"select generation_id, content_fingerprint, data_interval_end from {META}.publication")
    row = cur.fetchone()
    return {"generation_id": row[0], "content_fingerprint": row[1], "data_interval_end": row[2]} if row else None


def current_generation() -> str | None:
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur_pub = current_publication(cur)
    finally:
        conn.close()
    return cur_pub["generation_id"] if cur_pub else None


def published_interval_end():
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur_pub = current_publication(cur)
    finally:
        conn.close()
    return parse_interval_end(cur_pub.get("data_interval_end")) if cur_pub else None


def published_row_counts(cur) -> dict[str, int]:
    cur.execute("select to_regclass(%s)", [f"{META}.publication_tables"])
    if cur.fetchone()[0] is None:
        return {}
    cur.execute(f"select table_name, row_count from {META}.publication_tables")
    return {t: int(n) for t, n in cur.fetchall()}


def kept_generations(cur) -> list[str]:
    """Generations kept for rollback (their `bi_meta__g<key>` schema holds the publication record), oldest first."""
    cur.execute("select nspname from pg_namespace where nspname like %s", [f"{META}{GEN}%"])
    gens = []
    for (schema,) in cur.fetchall():
        cur.execute(f'select generation_id from "{schema}".publication')
        row = cur.fetchone()
        if row:
            gens.append(row[0])
    return sorted(gens)


def table_fingerprint(cur, schema: str, table: str) -> tuple[int, str]:
    """count(*) and ``<digest of the sorted row digests>:<digest of the column names and types>`` (order-independent,
    like `cxw.publish.table_fingerprint`)."""
    cur.execute("select column_name, data_type from information_schema.columns where table_schema = %s "
                "and table_name = %s order by ordinal_position", [schema, table])
    cols = cur.fetchall()
    digest = hashlib.sha256("\n".join(f"{c}\t{t}" for c, t in cols).encode()).hexdigest()[:16]
    cur.execute(f'select count(*), coalesce(md5(string_agg(h, \'\' order by h)), \'\') from '
                f'(select md5(t::text) as h from "{schema}"."{table}" as t) as s')
    n, h = cur.fetchone()
    return int(n), f"{h}:{digest}"


def comments(cur, schema: str) -> dict[str, dict]:
    """{<table>: {"table": text, "columns": {column: text}}} of ``schema`` (dbt persist_docs)."""
    docs: dict[str, dict] = {}
    cur.execute("select c.relname, obj_description(c.oid, 'pg_class') from pg_class c join pg_namespace n "
                "on n.oid = c.relnamespace where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') order by 1",
                [schema])
    for t, c in cur.fetchall():
        docs[t] = {"table": c, "columns": {}}
    cur.execute("select c.relname, a.attname, col_description(c.oid, a.attnum) from pg_class c join pg_namespace n "
                "on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid where n.nspname = %s "
                "and a.attnum > 0 and not a.attisdropped order by c.relname, a.attnum", [schema])
    for t, col, c in cur.fetchall():
        if t in docs:
            docs[t]["columns"][col] = c
    return docs


def _write_comments(cur, schema: str, docs: dict[str, dict]) -> None:
    from psycopg2 import sql

    for t, doc in docs.items():
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(t))
        if doc.get("table"):
            cur.execute(sql.SQL("comment on table {} is %s").format(target), [doc["table"]])
        for col, text in doc.get("columns", {}).items():
            if text:
                cur.execute(sql.SQL("comment on column {}.{} is %s").format(target, sql.Identifier(col)), [text])


# --- publish, swap, rollback -----------------------------------------------------------------------------------------

def _lock_serving(cur) -> None:
    """ACCESS EXCLUSIVE on every serving table: waits for BI transactions that read one (they keep their lock until
    they end), and makes the ones that start now wait until the swap commits."""
    from psycopg2 import sql

    names = [sql.SQL("{}.{}").format(sql.Identifier(s), sql.Identifier(t))
             for s in ALL_SERVING if _schema_exists(cur, s) for t in _tables(cur, s)]
    if names:
        cur.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.SQL(", ").join(names)))


def _grant(conn) -> dict:
    from .access import apply_postgres_access

    return apply_postgres_access(conn, schemas=SERVING, commit=False, extra_readable=(META,))


def _swap(conn, renames_fn, wait_s: float | None = None) -> dict:
    """Run ``renames_fn(cur)`` (the schema renames) in one transaction after locking the serving tables, then grant
    the audiences on the serving schemas, and commit. A lock not obtained within LOCK_TIMEOUT_MS (a long BI
    transaction, or a deadlock with a BI session that PostgreSQL broke) is retried up to ``wait_s``."""
    import psycopg2

    if wait_s is None:
        from .loader import lock_wait_s

        wait_s = lock_wait_s()
    deadline = time.monotonic() + wait_s
    attempts = 0
    while True:
        attempts += 1
        try:
            with conn.cursor() as cur:
                cur.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
                _lock_serving(cur)
                renames_fn(cur)
            access = _grant(conn)
            conn.commit()
            return {"attempts": attempts, "access": access}
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected):
            conn.rollback()
            if time.monotonic() >= deadline:
                raise
            log.info("publish swap: a BI session holds a serving table; waiting and retrying")
            time.sleep(0.5)
        except BaseException:
            conn.rollback()
            raise


def _rename(cur, old: str, new: str) -> None:
    from psycopg2 import sql

    if _schema_exists(cur, old):
        cur.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(old), sql.Identifier(new)))


def _prune(conn, keep_n: int) -> list[str]:
    from psycopg2 import sql

    with conn, conn.cursor() as cur:
        gens = kept_generations(cur)
        drop = gens[:-keep_n] if keep_n > 0 else gens
        for g in drop:
            for s in ALL_SERVING:
                cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(s + GEN + gen_key(g))))
    return drop


def publish(run_id: str, data_interval_start: str | None, data_interval_end: str | None) -> dict:
    """`cxw.publish.publish` on PostgreSQL (see the module's docstring). Same report keys."""
    from psycopg2 import sql

    t0 = time.perf_counter()
    conn = connect()
    Id = sql.Identifier
    try:
        with conn, conn.cursor() as cur:
            build = read_build_info(cur)
            tables = [(s, t) for s in PUBLISHED_SCHEMAS if _schema_exists(cur, s) for t in _tables(cur, s)]
            if not tables:
                raise RuntimeError(f"nothing to publish: no tables in schemas {PUBLISHED_SCHEMAS} of PostgreSQL")
            fps = {f"{s}.{t}": table_fingerprint(cur, s, t) for s, t in tables}
            docs = {f"{s}.{t}": d for s in PUBLISHED_SCHEMAS for t, d in comments(cur, s).items()}
            cur_pub = current_publication(cur)
            # how fresh each source is (cxw/freshness.py; its SQL runs on both databases): the generation's "as of"
            freshness = source_freshness(DuckLike(conn), conn.info.dbname,
                                         (build or {}).get("data_interval_end") or data_interval_end)
        run_interval_end = data_interval_end
        if build and build.get("data_interval_end"):
            data_interval_end = build["data_interval_end"]
        # as the DuckDB publish: fresher data is new content, the extraction time (loaded_at, column 2) alone is not
        fresh_content = [tuple(v for i, v in enumerate(r) if i != 2) for r in freshness]
        content_fp = content_fingerprint({**fps, "main.publication_freshness": (len(freshness), repr(fresh_content))},
                                         docs)
        base = {"path": f"postgresql:{conn.info.dbname}/{SERVING['kpi']}", "serving_schemas": list(ALL_SERVING),
                "tables": {k: v[0] for k, v in fps.items()}}
        if cur_pub and cur_pub["content_fingerprint"] == content_fp:
            log.info("publish: content unchanged (fingerprint %s), generation %s stays", content_fp[:12],
                     cur_pub["generation_id"])
            access = _grant(conn)  # an audience configuration changed since: granted again
            conn.commit()
            return {**base, "status": "unchanged", "generation_id": cur_pub["generation_id"], "audiences": access,
                    "data_interval_end": cur_pub.get("data_interval_end"),
                    "seconds": round(time.perf_counter() - t0, 2)}
        new_end = parse_interval_end(data_interval_end)
        cur_end = parse_interval_end((cur_pub or {}).get("data_interval_end"))
        if new_end is not None and cur_end is not None and new_end < cur_end:
            reason = (f"not published: this build's data ends {new_end.isoformat()}, before the published generation "
                      f"{cur_pub['generation_id']}'s ({cur_end.isoformat()}); BI keeps the newer data")
            log.warning("publish superseded — %s", reason)
            return {**base, "status": "superseded", "reason": reason, "generation_id": cur_pub["generation_id"],
                    "data_interval_end": cur_pub.get("data_interval_end"), "build_data_interval_end": data_interval_end,
                    "seconds": round(time.perf_counter() - t0, 2)}

        generation = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + content_fp[:8]
        # 1. the copy, outside any lock BI notices
        with conn, conn.cursor() as cur:
            for s in ALL_SERVING:
                cur.execute(sql.SQL("drop schema if exists {} cascade").format(Id(s + NEXT)))
                cur.execute(sql.SQL("create schema {}").format(Id(s + NEXT)))
            for s, t in tables:
                cur.execute(sql.SQL("create table {}.{} as select * from {}.{}").format(
                    Id(SERVING[s] + NEXT), Id(t), Id(s), Id(t)))
            for s in PUBLISHED_SCHEMAS:
                _write_comments(cur, SERVING[s] + NEXT, {k.split(".", 1)[1]: v for k, v in docs.items()
                                                         if k.split(".", 1)[0] == s})
            meta = META + NEXT
            cur.execute(sql.SQL("create table {}.publication (generation_id text, run_id text, data_interval_start "
                                "text, data_interval_end text, published_at timestamp, content_fingerprint text, "
                                "run_data_interval_end text, built_by_run text)").format(Id(meta)))
            cur.execute(sql.SQL("insert into {}.publication values (%s, %s, %s, %s, now() at time zone 'UTC', %s, "
                                "%s, %s)").format(Id(meta)),
                        [generation, run_id, data_interval_start, data_interval_end, content_fp, run_interval_end,
                         (build or {}).get("run_id")])
            cur.execute(sql.SQL("create table {}.publication_tables (table_name text, row_count bigint, "
                                "fingerprint text)").format(Id(meta)))
            for k, v in sorted(fps.items()):
                cur.execute(sql.SQL("insert into {}.publication_tables values (%s, %s, %s)").format(Id(meta)),
                            [k, v[0], v[1]])
            cur.execute(sql.SQL("create table {}.publication_freshness ({})").format(
                Id(meta), sql.SQL(FRESHNESS_COLUMNS.replace("varchar", "text"))))
            for r in freshness:
                cur.execute(sql.SQL("insert into {}.publication_freshness values (%s, %s, %s, %s, %s)").format(
                    Id(meta)), list(r))
            _write_comments(cur, meta, {t: {"table": d, "columns": c} for t, (d, c) in PUBLICATION_DOCS.items()})

        # 2. the swap: one transaction
        def renames(cur) -> None:
            for s in ALL_SERVING:
                if cur_pub:
                    _rename(cur, s, s + GEN + gen_key(cur_pub["generation_id"]))
                else:
                    cur.execute(sql.SQL("drop schema if exists {} cascade").format(Id(s)))
                _rename(cur, s + NEXT, s)

        swap = _swap(conn, renames)
        pruned = _prune(conn, KEEP_GENERATIONS - 1)  # the serving generation + KEEP-1 previous ones
    finally:
        conn.close()
    secs = time.perf_counter() - t0
    log.info("published generation %s (%d tables) into PostgreSQL in %.2fs", generation, len(tables), secs)
    return {**base, "status": "published", "generation_id": generation, "content_fingerprint": content_fp,
            "data_interval_end": data_interval_end, "swap_attempts": swap["attempts"], "pruned": pruned,
            "audiences": swap["access"], "seconds": round(secs, 2)}


def rollback(generation: str | None = None) -> dict:
    """Swap a kept generation (default: the newest one older than the serving one) back into the serving schemas,
    in one transaction; the serving one is kept as a previous generation."""
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur_pub = current_publication(cur)
            gens = kept_generations(cur)
        cur_gen = cur_pub["generation_id"] if cur_pub else None
        if generation is None:
            older = [g for g in gens if g < (cur_gen or "")]
            if not older:
                raise RuntimeError(f"no generation older than {cur_gen} to roll back to (kept: {gens})")
            generation = older[-1]
        elif generation not in gens:
            raise RuntimeError(f"generation {generation} not found; kept: {gens}")

        def renames(cur) -> None:
            for s in ALL_SERVING:
                if cur_gen:
                    _rename(cur, s, s + GEN + gen_key(cur_gen))
                _rename(cur, s + GEN + gen_key(generation), s)

        swap = _swap(conn, renames)
    finally:
        conn.close()
    return {"from": cur_gen, "to": generation, "path": "postgresql", "audiences": sorted(swap["access"]["roles"])}


# --- readers: alerts, the summary --------------------------------------------------------------------------------------

class DuckLike:
    """A psycopg2 connection with DuckDB's `execute(sql, params).fetchone()` and `?` placeholders, for the readers
    whose SQL both databases run (alerts)."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, query: str, params=None):
        cur = self.conn.cursor()
        cur.execute(query.replace("%", "%%").replace("?", "%s") if params else query, params or None)
        return cur


def headline_kpis(kpis: list[str]) -> list[tuple]:
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select to_regclass(%s)", [f"{SERVING['kpi']}.kpi_period"])
            if cur.fetchone()[0] is None:
                return []
            cur.execute(f"select kpi, value, n, period_start, period_end from {SERVING['kpi']}.kpi_period "
                        "where grain = 'window' and channel = 'all' and segment = 'all' and kpi = any(%s)", [kpis])
            return cur.fetchall()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cxw.publish_postgres")
    ap.add_argument("what", choices=["rollback", "current"])
    ap.add_argument("generation", nargs="?")
    a = ap.parse_args(argv)
    out = rollback(a.generation) if a.what == "rollback" else {"generation_id": current_generation()}
    print(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
