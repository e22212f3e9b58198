"""Load landed raw files into a PostgreSQL build database's `raw_<source>` schemas (`load_into_postgres`, what
`cxw.tasks.load_raw` runs when CXW_DBT_TARGET is postgres): the same contract as the DuckDB loader (cxw/loader.py),
COPY-based, a full idempotent rebuild of each table whose set of loads changed."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from .loader import RawLoad, _fingerprint, _ident, _load_error, complete_loads, raw_contract

log = logging.getLogger(__name__)

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_COPY_BATCH_ROWS = 100_000


def _pg_column(name: str) -> str:
    """Raw column name as a PostgreSQL identifier: lower-cased, so the models' unquoted camelCase vendor names
    (`reviewId`, folded to `reviewid` by PostgreSQL) resolve to it, exactly as DuckDB resolves them case-insensitively."""
    if not _COLUMN.match(name):
        raise ValueError(f"refusing raw column name {name!r}: must match {_COLUMN.pattern}")
    return name.lower()


def _pg_type(duck_type: str) -> tuple[str, str]:
    """(PostgreSQL type, how DuckDB renders the column for CSV: 'json' | 'plain') for a DuckDB column type."""
    t = duck_type.upper()
    if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION", "JSON")):
        return "jsonb", "json"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"):
        return ("numeric(20,0)" if t == "UBIGINT" else "bigint"), "plain"
    if t == "HUGEINT" or t.startswith("DECIMAL"):
        return ("numeric" if t == "HUGEINT" else t.replace("DECIMAL", "numeric")), "plain"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "double precision", "plain"
    if t == "BOOLEAN":
        return "boolean", "plain"
    if t == "DATE":
        return "date", "plain"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "timestamptz", "plain"
    if t.startswith("TIMESTAMP"):
        return "timestamp", "plain"
    if t == "TIME":
        return "time", "plain"
    # VARCHAR, UUID, BLOB, the NULL type of an all-null column, ...: text (vendor strings stay text)
    return "text", "text"


def _csv_chunks(reader, depth: int = 2):
    """(rows, CSV bytes) per Arrow batch of `reader`, rendered by a producer thread while the caller COPYs the previous
    chunk: DuckDB (to_json of the nested columns) and pyarrow's CSV writer release the GIL, so reading and COPY
    overlap. At most `depth` chunks wait in memory."""
    import io
    import queue
    import threading

    import pyarrow.csv as pacsv

    chunks: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            opts = pacsv.WriteOptions(include_header=False)
            for batch in reader:
                if stop.is_set():
                    return
                if batch.num_rows == 0:
                    continue
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, opts)
                buf.seek(0)
                chunks.put((batch.num_rows, buf))
            chunks.put(done)
        except BaseException as exc:  # handed to the consumer, re-raised there
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="cxw-csv", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                pass
            worker.join(0.05)


def pg_dsn() -> str:
    """libpq DSN from the variables profiles.yml uses (CXW_PG_HOST/PORT/USER/PASSWORD/DBNAME)."""
    from .settings import settings

    s = settings()
    parts = {"host": s.pg_host, "port": s.pg_port, "user": s.pg_user, "password": s.pg_password,
             "dbname": s.pg_dbname}
    def q(v: str) -> str:
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={q(v)}" for k, v in parts.items() if v != "" or k != "password")


def ensure_pg_database(dsn: str) -> bool:
    """Create the DSN's database when it does not exist (connecting to the `postgres` maintenance DB). True if created."""
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    dbname = params.get("dbname", "")
    if not _DB_NAME.match(dbname):
        raise ValueError(f"refusing database name {dbname!r}: must match {_DB_NAME.pattern}")
    try:
        psycopg2.connect(dsn).close()
        return False
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = psycopg2.connect(**{**params, "dbname": "postgres"})
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    finally:
        admin.close()
    return True


def load_into_postgres(raw_root: Path, dsn: str | None = None, *, force: bool = False,
                       batch_rows: int = _COPY_BATCH_ROWS, sources: list[str] | None = None) -> dict:
    """Rebuild raw_<source>.<entity> tables in PostgreSQL from the complete raw loads (same contract as
    `load_into_duckdb`).

    DuckDB (in memory, never the build database) reads the Parquet; nested columns (GA4 event_params, items, device,
    geo, ...) become JSON text that lands as jsonb, other columns their matching PostgreSQL type. Rows go in with
    `COPY ... FROM STDIN (FORMAT csv)`, CSV rendered by pyarrow from Arrow batches. Each table is rebuilt in one
    transaction: new table, copy, drop the old one, rename, bookkeeping — a crash leaves the previous table.
    Dropping the old table cascades to the dbt views over it (base_* models); `dbt build` recreates them.
    """
    import duckdb
    import psycopg2
    from psycopg2 import sql

    dsn = dsn or pg_dsn()
    loads = [ld for ld in complete_loads(raw_root) if sources is None or ld.source in sources]
    groups: dict[tuple[str, str], list[RawLoad]] = {}
    for ld in loads:
        groups.setdefault((ld.source, ld.entity), []).append(ld)

    report: dict = {"tables": {}, "skipped": [], "seconds": 0.0, "target": "postgres"}
    t0 = time.perf_counter()
    duck = duckdb.connect(":memory:")
    duck.execute("set TimeZone = 'UTC'")
    pg = psycopg2.connect(dsn)
    try:
        with pg, pg.cursor() as cur:
            cur.execute("create schema if not exists _cxw")
            cur.execute(
                "create table if not exists _cxw.raw_tables (source text, entity text, fingerprint text, "
                "rows bigint, loaded_at timestamp, primary key (source, entity))"
            )
            cur.execute(
                "create table if not exists _cxw.raw_loads (source text, entity text, load_id text, "
                "extracted_at text, window_start text, window_end text, rows_in_manifest bigint, "
                "duplicates_in_load bigint, dead_letters bigint, primary key (source, entity, load_id))"
            )
        for (source, entity), group in sorted(groups.items()):
            schema_name, table_name = f"raw_{_ident(source)}", _ident(entity)
            new_name = f"{table_name}__cxw_new"[:63]
            table = f"{schema_name}.{table_name}"
            fp = _fingerprint(group)
            with pg, pg.cursor() as cur:
                cur.execute("select fingerprint from _cxw.raw_tables where source = %s and entity = %s",
                            [source, entity])
                prev = cur.fetchone()
                cur.execute("select count(*) from information_schema.tables where table_schema = %s "
                            "and table_name = %s", [schema_name, table_name])
                exists = cur.fetchone()[0]
            if not force and prev and prev[0] == fp and exists:
                report["skipped"].append(table)
                continue
            files = [str(f) for ld in group for f in ld.files]
            t1 = time.perf_counter()
            rows = 0
            ident_schema, ident_new = sql.Identifier(schema_name), sql.Identifier(new_name)
            try:
                with pg, pg.cursor() as cur:  # one transaction per table: commit on success, rollback on any error
                    cur.execute(sql.SQL("create schema if not exists {}").format(ident_schema))
                    cur.execute(sql.SQL("drop table if exists {}.{}").format(ident_schema, ident_new))
                    if files:
                        src = duck.read_parquet(files, union_by_name=True)
                        described = list(zip(src.columns, [str(t) for t in src.types]))
                        columns, selects, seen = [], [], set()
                        for name, duck_type, *_ in described:
                            pg_name = _pg_column(name)
                            if pg_name in seen:
                                raise ValueError(f"{table}: columns {name!r} and another differ only by case")
                            seen.add(pg_name)
                            pg_type, how = _pg_type(duck_type)
                            quoted = '"' + name.replace('"', '""') + '"'
                            if how == "json":
                                selects.append(f"cast(to_json({quoted}) as varchar) as {quoted}")
                            elif how == "text":
                                # PostgreSQL text cannot hold NUL; everything else is kept as delivered
                                selects.append(f"replace(cast({quoted} as varchar), chr(0), '') as {quoted}")
                            else:
                                selects.append(quoted)
                            columns.append(sql.SQL("{} {}").format(sql.Identifier(pg_name), sql.SQL(pg_type)))
                        cur.execute(sql.SQL("create table {}.{} ({})").format(ident_schema, ident_new,
                                                                              sql.SQL(", ").join(columns)))
                        copy = sql.SQL("copy {}.{} from stdin with (format csv, header false)").format(
                            ident_schema, ident_new).as_string(cur)
                        rel = src.select(", ".join(selects))
                        reader = (rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader")
                                  else rel.fetch_record_batch(batch_rows))
                        for n, buf in _csv_chunks(reader):
                            cur.copy_expert(copy, buf)
                            rows += n
                    else:
                        cur.execute(sql.SQL("create table {}.{} (_load_id text, _extracted_at timestamptz, "
                                            "_record_seq bigint)").format(ident_schema, ident_new))
                    cur.execute(sql.SQL("drop table if exists {}.{} cascade").format(ident_schema,
                                                                                     sql.Identifier(table_name)))
                    cur.execute(sql.SQL("alter table {}.{} rename to {}").format(ident_schema, ident_new,
                                                                                 sql.Identifier(table_name)))
                    for ld in group:
                        m = ld.meta
                        cur.execute(
                            "insert into _cxw.raw_loads values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                            "on conflict (source, entity, load_id) do update set extracted_at = excluded.extracted_at, "
                            "window_start = excluded.window_start, window_end = excluded.window_end, "
                            "rows_in_manifest = excluded.rows_in_manifest, "
                            "duplicates_in_load = excluded.duplicates_in_load, dead_letters = excluded.dead_letters",
                            [source, entity, ld.load_id, str(m.get("extracted_at")), str(m.get("window_start")),
                             str(m.get("window_end")), int(m.get("rows") or 0), int(m.get("duplicates_in_load") or 0),
                             int(m.get("dead_letters") or 0)],
                        )
                    cur.execute(
                        "insert into _cxw.raw_tables values (%s, %s, %s, %s, (now() at time zone 'UTC')) "
                        "on conflict (source, entity) do update set fingerprint = excluded.fingerprint, "
                        "rows = excluded.rows, loaded_at = excluded.loaded_at",
                        [source, entity, fp, rows],
                    )
            except ValueError as exc:
                if str(exc).startswith("refusing raw column name") or "differ only by case" in str(exc):
                    raise  # our own checks: they name the column, never a value
                raise _load_error("postgres", source, entity, exc, group) from None
            except Exception as exc:  # COPY / DuckDB / Arrow errors quote values: masked (issue 15.4)
                raise _load_error("postgres", source, entity, exc, group) from None
            with pg, pg.cursor() as cur:
                cur.execute(sql.SQL("analyze {}.{}").format(ident_schema, sql.Identifier(table_name)))
            secs = time.perf_counter() - t1
            report["tables"][table] = {"rows": rows, "loads": len(group), "seconds": round(secs, 3),
                                       "rows_per_s": round(rows / secs) if secs > 0 else None}
            log.info("loaded %s into postgres: %s rows from %s loads in %.2fs", table, rows, len(group), secs)
        report["declared"] = ensure_declared_tables_pg(pg, sources)
    finally:
        pg.close()
        duck.close()
    report["seconds"] = round(time.perf_counter() - t0, 3)
    total_rows = sum(t["rows"] for t in report["tables"].values())
    report["rows"] = total_rows
    report["rows_per_s"] = round(total_rows / report["seconds"]) if report["seconds"] > 0 else None
    return report


def ensure_declared_tables_pg(pg, sources: list[str] | None = None, contract: dict | None = None) -> list[str]:
    """`ensure_declared_tables` for PostgreSQL: declared raw tables without a row get the contract's columns (lower-
    cased, PostgreSQL types by `_pg_type`). A load with rows rebuilds the table from its files as always."""
    from psycopg2 import sql

    contract = raw_contract() if contract is None else contract
    wanted = {(s, e): cols for s, ents in contract.items() if sources is None or s in sources
              for e, cols in ents.items()}
    changed: list[str] = []
    if not wanted:
        return changed
    with pg, pg.cursor() as cur:
        cur.execute("select table_schema, table_name, lower(column_name) from information_schema.columns "
                    "where table_schema like 'raw\\_%%'")
        have: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in cur.fetchall():
            have.setdefault((schema[4:], table), set()).add(column)
        cur.execute("select source, entity, rows from _cxw.raw_tables")
        rows = {(s, e): n for s, e, n in cur.fetchall()}
        for (source, entity), cols in sorted(wanted.items()):
            schema, table = sql.Identifier(f"raw_{_ident(source)}"), sql.Identifier(_ident(entity))
            present = have.get((source, entity))
            decl = [(_pg_column(c), _pg_type(t)[0]) for c, t in cols.items()]
            if present is None:
                meta = [("_load_id", "text"), ("_extracted_at", "timestamptz"), ("_record_seq", "bigint")]
                cur.execute(sql.SQL("create schema if not exists {}").format(schema))
                cur.execute(sql.SQL("create table {}.{} ({})").format(schema, table, sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in decl + meta)))
            elif rows.get((source, entity), 0) == 0:
                missing = [(c, t) for c, t in decl if c not in present]
                if not missing:
                    continue
                cur.execute(sql.SQL("select count(*) from {}.{}").format(schema, table))
                if cur.fetchone()[0]:
                    continue
                for c, t in missing:
                    cur.execute(sql.SQL("alter table {}.{} add column {} {}").format(schema, table,
                                                                                    sql.Identifier(c), sql.SQL(t)))
            else:
                continue
            changed.append(f"raw_{source}.{entity}")
    return changed
