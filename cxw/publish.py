"""Write-audit-publish: copy the audited BI marts into a new generation file and switch BI to it atomically.

    published/generations/<generation>.duckdb   immutable copies, the last `keep` of them kept for rollback
    published/cx.duckdb                         a hard link to the current generation, replaced by os.replace()
    published/audiences/<audience>/...          the same per audience of access/audiences.yml (cxw/access.py)

A BI connection that has `cx.duckdb` open keeps reading its generation (the inode it opened) while a new one is
switched in; new connections see the new generation. The build database is only read here.

BI never goes back in time: each generation records the end of the data interval its data covers (`publication.
data_interval_end`, from the build's `_cxw.build_info`), and a build whose interval ends before the published
generation's is not published (status "superseded", with the reason in the task log and the run summary).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from .config import duckdb_config, paths
from .freshness import COLUMNS as FRESHNESS_COLUMNS
from .freshness import DOCS as FRESHNESS_DOCS
from .freshness import source_freshness
from .settings import settings

log = logging.getLogger(__name__)

# Schemas of the build database that BI reads (dbt folders marts/core, marts/kpi, marts/cx).
PUBLISHED_SCHEMAS = ("core", "kpi", "cx")
KEEP_GENERATIONS = int(settings().keep_generations)
# Storage format of the published files. DuckDB 2.x writes storage version 69 by default, which no DuckDB 1.x opens
# ("can only read versions between 64 and 68") - and BI drivers (JDBC, ODBC, duckdb_engine with an older wheel)
# bundle 1.x releases. v1.0.0 (storage version 64) is read by every DuckDB from 1.0 on.
PUBLISHED_STORAGE_VERSION = "v1.0.0"
# Column types BI drivers cannot map (JDBC / ODBC have no 128-bit or unsigned integers; sum() of an integer column is
# a HUGEINT in DuckDB), and the type the published copy casts them to. A value out of the target's range fails the
# publish (DuckDB's conversion error) rather than being changed.
BI_TYPE_CASTS = {"HUGEINT": "BIGINT", "UHUGEINT": "BIGINT", "UBIGINT": "DECIMAL(20,0)", "UINTEGER": "BIGINT",
                 "USMALLINT": "INTEGER", "UTINYINT": "SMALLINT"}
# Descriptions of the publication's own record tables (the marts' descriptions come from dbt, persist_docs).
PUBLICATION_DOCS = {
    "publication": ("This generation of the published file: which run published it and the data interval it covers.", {
        "generation_id": "Id of this published generation (UTC publish time and the first characters of its content "
                         "fingerprint).",
        "run_id": "Airflow run that published this generation.",
        "data_interval_start": "Start of the publishing run's data interval (ISO 8601, UTC).",
        "data_interval_end": "End of the data interval the published data covers (ISO 8601, UTC; exclusive).",
        "published_at": "When this generation was published (UTC).",
        "content_fingerprint": "Digest of every published table's row count and fingerprint and of the descriptions: "
                               "equal content is not published again.",
        "run_data_interval_end": "End of the publishing run's own data interval (ISO 8601, UTC).",
        "built_by_run": "Airflow run whose dbt build produced the published data.",
    }),
    "publication_tables": ("Each published table of this generation with its row count and fingerprint.", {
        "table_name": "Published table, as <schema>.<table>.",
        "row_count": "Rows of the table in this generation.",
        "fingerprint": "Sum of the row hashes and a digest of the column names and types (cxw.publish."
                       "table_fingerprint): equal fingerprints mean equal tables.",
    }),
    "publication_freshness": FRESHNESS_DOCS,
}


def _tables(con, catalog: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? and table_schema in (select unnest(?::varchar[])) order by 1, 2",
        [catalog, list(PUBLISHED_SCHEMAS)],
    ).fetchall()
    return [(s, t) for s, t in rows]


def table_fingerprint(con, qualified: str) -> tuple[int, str]:
    """count(*) and ``<sum of row hashes>:<digest of the column names and types>``.

    The sum is order-independent (not XOR: equal rows must not cancel out). DuckDB hashes the row struct natively
    (7× faster than hashing its text form, which publish did before); that hash ignores field names, so the schema
    digest makes a renamed or retyped column a different fingerprint."""
    cols = con.execute(f"describe select * from {qualified}").fetchall()
    schema = hashlib.sha256("\n".join(f"{c[0]}\t{c[1]}" for c in cols).encode()).hexdigest()[:16]
    n, h = con.execute(
        f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar from {qualified} as t"
    ).fetchone()
    return int(n), f"{h}:{schema}"


def published_fingerprint(con, qualified: str) -> tuple[int, str]:
    """`table_fingerprint` of a build table as it is published (BI_TYPE_CASTS applied): what `publication_tables`
    records and what the published file's own table fingerprints to."""
    return table_fingerprint(con, f"(select {_published_columns(con, qualified)} from {qualified})")


def _published_columns(con, qualified: str) -> str:
    """The select list of a build table as it is published: columns of a type BI drivers cannot map cast
    (BI_TYPE_CASTS)."""
    cols = con.execute(f"describe select * from {qualified}").fetchall()
    return ", ".join(f'cast("{c[0]}" as {BI_TYPE_CASTS[c[1]]}) as "{c[0]}"' if c[1] in BI_TYPE_CASTS else f'"{c[0]}"'
                     for c in cols)


def published_comments(con, catalog: str, schemas=PUBLISHED_SCHEMAS) -> dict[str, dict]:
    """The descriptions (DuckDB comments; in the build: dbt persist_docs) of the tables of ``schemas`` in
    ``catalog``: {<schema>.<table>: {"table": text, "columns": {column: text}}}."""
    docs: dict[str, dict] = {}
    for s, t, c in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where database_name = ? "
            "and schema_name in (select unnest(?::varchar[])) order by 1, 2", [catalog, list(schemas)]).fetchall():
        docs[f"{s}.{t}"] = {"table": c, "columns": {}}
    for s, t, col, c in con.execute(
            "select schema_name, table_name, column_name, comment from duckdb_columns() where database_name = ? "
            "and schema_name in (select unnest(?::varchar[])) order by 1, 2, column_index",
            [catalog, list(schemas)]).fetchall():
        if f"{s}.{t}" in docs:
            docs[f"{s}.{t}"]["columns"][col] = c
    return docs


def content_fingerprint(fps: dict, docs: dict) -> str:
    """Digest of a generation's content: the tables' fingerprints and their descriptions (a build that only
    documents a column better is published)."""
    return hashlib.sha256(json.dumps([fps, docs], sort_keys=True).encode()).hexdigest()


def connect_new_generation_file(path: Path):
    """A connection creating a published file: storage version PUBLISHED_STORAGE_VERSION (1.x readers open it)."""
    import duckdb

    return duckdb.connect(str(path),
                          config={**duckdb_config(), "storage_compatibility_version": PUBLISHED_STORAGE_VERSION})


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_comments(con, docs: dict[str, dict]) -> None:
    """COMMENT ON the tables and columns of ``docs`` (as `published_comments` returns) in the current database, in
    one transaction (``con`` must have none open). Each statement on its own was a commit of the file with its own WAL
    write and fsync: about 450 of them per publish at scale XS (main and audience files), seconds of waiting on a busy
    disk for the same comments (issue 16.8)."""
    con.execute("begin transaction")
    try:
        for name, doc in docs.items():
            s, t = name.split(".", 1)
            qualified = f'"{s}"."{t}"'
            if doc.get("table"):
                con.execute(f"comment on table {qualified} is {_sql_text(doc['table'])}")
            for col, text in doc.get("columns", {}).items():
                if text:
                    con.execute(f'comment on column {qualified}."{col}" is {_sql_text(text)}')
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _on_postgres(published_db) -> bool:
    """True when the pipeline publishes into PostgreSQL (CXW_DBT_TARGET=postgres; cxw/publish_postgres.py) and no
    DuckDB file was named."""
    return published_db is None and settings().dbt_target == "postgres"


def current_generation(published_db: Path | None = None) -> str | None:
    import duckdb

    if _on_postgres(published_db):
        from .publish_postgres import current_generation as pg

        return pg()
    db = published_db or paths().published_db
    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("select generation_id from publication").fetchone()
        return row[0] if row else None
    finally:
        con.close()


def parse_interval_end(value) -> datetime | None:
    """An interval bound as an aware UTC datetime; None when absent or not a date (then no order is known)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def published_interval_end(published_db: Path | None = None) -> datetime | None:
    """The data interval end of the generation BI reads (None: nothing published, or no known interval)."""
    if _on_postgres(published_db):
        from .publish_postgres import published_interval_end as pg

        return pg()
    cur = _current_publication(published_db or paths().published_db)
    return parse_interval_end(cur.get("data_interval_end")) if cur else None


def publish(run_id: str, data_interval_start: str | None, data_interval_end: str | None,
            build_db: Path | None = None, full: bool = False) -> dict:
    """Publish the build's marts as a new generation (see the module's docstring). The new generation starts as a
    byte copy of the generation BI reads, and only the tables whose published fingerprint or description changed are
    written again (`_reuse_base`); ``full`` writes every table into a fresh file instead (an erasure does: a copy keeps
    the freed pages of the tables it replaced, which may still hold the erased person's rows)."""
    from .buildstate import read_build_info
    from .loader import connect_build_db

    if _on_postgres(build_db):  # write-audit-publish with schemas of the PostgreSQL database
        from .publish_postgres import publish as pg

        return pg(run_id, data_interval_start, data_interval_end)

    p = paths()
    build_db = build_db or p.build_db
    p.generations_dir.mkdir(parents=True, exist_ok=True)
    _clean_orphans(p.generations_dir, p.published_dir)
    t0 = time.perf_counter()

    # 1. Fingerprint what would be published; re-publishing identical content is a no-op.
    #    The build's record (written by dbt_build) is read in the same connection as the marts: the interval the
    #    data covers, even when another run built since this run's dbt_build (without the pool).
    src, lock_wait = connect_build_db(build_db, read_only=True)  # waits while another run writes it
    try:
        tables = _tables(src, src.execute("select current_database()").fetchone()[0])
        if not tables:
            raise RuntimeError(f"nothing to publish: no tables in schemas {PUBLISHED_SCHEMAS} of {build_db}")
        columns = {f"{s}.{t}": _published_columns(src, f'"{s}"."{t}"') for s, t in tables}
        # fingerprints of the tables as published (casts applied): publication_tables matches the published file
        fps = {f"{s}.{t}": published_fingerprint(src, f'"{s}"."{t}"') for s, t in tables}
        docs = published_comments(src, src.execute("select current_database()").fetchone()[0])
        build = read_build_info(src)
        # how fresh each source is (cxw/freshness.py): the generation's "as of" per source
        freshness = source_freshness(src, src.execute("select current_database()").fetchone()[0],
                                     (build or {}).get("data_interval_end") or data_interval_end)
    finally:
        src.close()
    run_interval_end = data_interval_end
    if build and build.get("data_interval_end"):
        data_interval_end = build["data_interval_end"]
    # fresher data is new content even where no published table changed; the extraction time (loaded_at, column 2)
    # is not: a run that re-reads the same records (at-least-once, a lookback window) changes it and nothing else,
    # and must leave the published generation as it is
    fresh_content = [tuple(v for i, v in enumerate(r) if i != 2) for r in freshness]
    content_fp = content_fingerprint({**fps, "main.publication_freshness": (len(freshness), repr(fresh_content))},
                                     docs)
    cur = _current_publication(p.published_db)
    if cur and cur.get("content_fingerprint") == content_fp:
        log.info("publish: content unchanged (fingerprint %s), generation %s stays", content_fp[:12],
                 cur["generation_id"])
        from .access import sync

        audiences = sync()  # an audience configuration changed since: its files are derived again
        return {"status": "unchanged", "generation_id": cur["generation_id"], "path": str(p.published_db),
                "audiences": audiences,
                "data_interval_end": cur.get("data_interval_end"), "lock_wait_s": lock_wait,
                "tables": {k: v[0] for k, v in fps.items()}, "seconds": round(time.perf_counter() - t0, 2)}
    # 1b. Never move BI back in time: a build covering an older interval than the published one is not published.
    new_end, cur_end = parse_interval_end(data_interval_end), parse_interval_end((cur or {}).get("data_interval_end"))
    if new_end is not None and cur_end is not None and new_end < cur_end:
        reason = (f"not published: this build's data ends {new_end.isoformat()}, before the published generation "
                  f"{cur['generation_id']}'s ({cur_end.isoformat()}); BI keeps the newer data. A newer run "
                  f"published while this one was building; the next run rebuilds with this run's data included")
        log.warning("publish superseded — %s", reason)
        return {"status": "superseded", "reason": reason, "generation_id": cur["generation_id"],
                "path": str(p.published_db), "data_interval_end": cur.get("data_interval_end"),
                "build_data_interval_end": data_interval_end, "lock_wait_s": lock_wait,
                "seconds": round(time.perf_counter() - t0, 2)}

    # 2. Copy into a temp generation file, record the publication, checkpoint, rename into place.
    generation = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + content_fp[:8]
    final = p.generations_dir / f"{generation}.duckdb"
    tmp = p.generations_dir / f".tmp-{generation}.duckdb"
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    base = None if full else _reuse_base(p, cur, fps, docs)
    if base is not None:
        import shutil

        shutil.copyfile(base["path"], tmp)  # sendfile: the unchanged tables cost a file copy, no decoding
    con = connect_new_generation_file(tmp)
    try:
        kept = _drop_all_but(con, base["kept"]) if base is not None else set()
        write = [(s, t) for s, t in tables if f"{s}.{t}" not in kept]
        con.execute(f"attach '{build_db}' as build (read_only)")
        for s, t in write:
            con.execute(f'create schema if not exists "{s}"')
            con.execute(f'create table "{s}"."{t}" as select {columns[f"{s}.{t}"]} from build."{s}"."{t}"')
        con.execute("detach build")
        write_comments(con, {k: v for k, v in docs.items() if k not in kept})
        con.execute(
            "create table publication (generation_id varchar, run_id varchar, data_interval_start varchar, "
            "data_interval_end varchar, published_at timestamp, content_fingerprint varchar, "
            "run_data_interval_end varchar, built_by_run varchar)"
        )
        con.execute("insert into publication values (?, ?, ?, ?, now()::timestamp, ?, ?, ?)",
                    [generation, run_id, data_interval_start, data_interval_end, content_fp, run_interval_end,
                     (build or {}).get("run_id")])
        con.execute("create table publication_tables (table_name varchar, row_count bigint, fingerprint varchar)")
        con.executemany("insert into publication_tables values (?, ?, ?)",
                        [[k, v[0], v[1]] for k, v in sorted(fps.items())])
        con.execute(f"create table publication_freshness ({FRESHNESS_COLUMNS})")
        if freshness:
            con.executemany("insert into publication_freshness values (?, ?, ?, ?, ?)", [list(r) for r in freshness])
        write_comments(con, {f"main.{t}": {"table": d, "columns": c} for t, (d, c) in PUBLICATION_DOCS.items()})
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(tmp, final)
    # one file per audience (access/audiences.yml), derived before BI is switched: a failure switches nothing
    from .access import derive_generation, sync

    derive_generation(final, previous=base["path"] if base else None)  # from the audience files of the base too
    _switch(final, p.published_db)
    removed = _prune(p.generations_dir, KEEP_GENERATIONS, keep=final)
    audiences = sync()  # every audience switched to this generation; those of pruned generations dropped
    secs = time.perf_counter() - t0
    log.info("published generation %s (%d tables, %d written, the others copied from %s) in %.2fs", generation,
             len(tables), len(write), base["generation_id"] if base else "nothing: a full publish", secs)
    return {"status": "published", "generation_id": generation, "path": str(p.published_db),
            "generation_path": str(final), "tables": {k: v[0] for k, v in fps.items()},
            "written": sorted(f"{s}.{t}" for s, t in write), "copied_from": base["generation_id"] if base else None,
            "content_fingerprint": content_fp, "data_interval_end": data_interval_end, "lock_wait_s": lock_wait,
            "pruned": removed, "audiences": audiences, "seconds": round(secs, 2)}


def _reuse_base(p, cur: dict | None, fps: dict, docs: dict) -> dict | None:
    """The generation file a new generation can start from (a copy) and the tables of it that stay: those whose
    recorded fingerprint (publication_tables: row count, sum of row hashes, column names and types as published) and
    descriptions equal the build's (the file's own records: it need not be the inode BI reads, e.g. where hard links
    are refused). None (a full publish) when nothing is published, the current generation's file is missing or not
    checkpointed (a WAL beside it), it records no fingerprints, or no table is unchanged.
    An erasure keeps these records true: it recomputes them when it rewrites a generation (cxw/erase_stores.py)."""
    import duckdb

    if not cur or not cur.get("generation_id"):
        return None
    path = p.generations_dir / f"{cur['generation_id']}.duckdb"
    if not path.exists() or Path(str(path) + ".wal").exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        recorded = {n: (int(c), f) for n, c, f in
                    con.execute("select table_name, row_count, fingerprint from publication_tables").fetchall()}
        prev_docs = published_comments(con, con.execute("select current_database()").fetchone()[0])
    except duckdb.Error:
        return None
    finally:
        con.close()
    kept = {n for n, fp in fps.items() if recorded.get(n) == tuple(fp) and prev_docs.get(n) == docs.get(n)}
    return {"path": path, "generation_id": cur["generation_id"], "kept": kept} if kept else None


def _drop_all_but(con, kept: set[str]) -> set[str]:
    """In a copied generation file: drop every table and view but ``kept`` (<schema>.<table>), then the schemas left
    empty, in one transaction. Returns the tables kept."""
    con.execute("begin transaction")
    for s, t, kind in con.execute("select table_schema, table_name, table_type from information_schema.tables "
                                  "where table_catalog = current_database() order by 1, 2").fetchall():
        if f"{s}.{t}" not in kept:
            con.execute(f'drop {"view" if kind == "VIEW" else "table"} "{s}"."{t}"')
    for (s,) in con.execute("select schema_name from information_schema.schemata where catalog_name = "
                            "current_database() and schema_name not in ('main', 'information_schema', 'pg_catalog') "
                            "and schema_name not in (select table_schema from information_schema.tables "
                            "where table_catalog = current_database())").fetchall():
        con.execute(f'drop schema "{s}"')
    con.execute("commit")
    return kept


def _current_publication(db: Path) -> dict | None:
    import duckdb

    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("select generation_id, content_fingerprint, data_interval_end from publication").fetchone()
    finally:
        con.close()
    return {"generation_id": row[0], "content_fingerprint": row[1], "data_interval_end": row[2]} if row else None


def _switch(generation_file: Path, published_db: Path) -> None:
    """Point published_db at generation_file with one atomic rename (hard link, copy if links are refused). Already
    pointing there: nothing to do (a rename onto a hard link of the same file does nothing and would leave the temp
    link behind, reported as an orphan of an interrupted publish by the next run)."""
    link_tmp = published_db.with_name(f".{published_db.name}.switch")
    link_tmp.unlink(missing_ok=True)
    if published_db.exists() and os.path.samefile(generation_file, published_db):
        return
    try:
        os.link(generation_file, link_tmp)
    except OSError:
        import shutil

        shutil.copyfile(generation_file, link_tmp)
    os.replace(link_tmp, published_db)
    dir_fd = os.open(published_db.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _clean_orphans(generations_dir: Path, published_dir: Path) -> None:
    for orphan in list(generations_dir.glob(".tmp-*")) + list(published_dir.glob(".*.switch")):
        log.warning("removing orphan of an interrupted publish: %s", orphan)
        orphan.unlink(missing_ok=True)
        Path(str(orphan) + ".wal").unlink(missing_ok=True)


def generations() -> list[Path]:
    return sorted(paths().generations_dir.glob("[0-9]*.duckdb"))


def _prune(generations_dir: Path, keep_n: int, keep: Path) -> list[str]:
    gens = sorted(generations_dir.glob("[0-9]*.duckdb"))
    removed = []
    for g in gens[:-keep_n] if keep_n > 0 else []:
        if g != keep:
            g.unlink()
            removed.append(g.name)
    return removed


def rollback(generation: str | None = None) -> dict:
    """Switch BI back to `generation` (default: the one before the current). Holds the warehouse lock exclusively
    (cxw/warehouse_lock.py): a publish running at the same time could otherwise switch BI forward again right after,
    or retention / an erasure remove or rewrite the generation being switched to; waits up to
    CXW_BUILD_DB_LOCK_WAIT_S, then WarehouseBusy with nothing switched."""
    from .warehouse_lock import maintenance

    with maintenance("rollback"):
        if _on_postgres(None):  # the previous generation's schemas swapped back into serving
            from .publish_postgres import rollback as pg

            return pg(generation)
        p = paths()
        gens = generations()
        cur = current_generation()
        if generation is None:
            older = [g for g in gens if g.stem < (cur or "")]
            if not older:
                raise RuntimeError(f"no generation older than {cur} to roll back to (kept: {[g.stem for g in gens]})")
            target = older[-1]
        else:
            target = p.generations_dir / f"{generation}.duckdb"
            if not target.exists():
                raise RuntimeError(f"generation {generation} not found; kept: {[g.stem for g in gens]}")
        from .access import derive_generation, switch_audiences

        derive_generation(target)  # (kept ones are not derived again) then every audience follows the main file
        _switch(target, p.published_db)
        audiences = switch_audiences(target.stem)
        return {"from": cur, "to": target.stem, "path": str(p.published_db), "audiences": sorted(audiences)}
