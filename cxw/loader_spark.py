"""Register the landed raw Parquet as the `raw_<source>.<entity>` tables of a Spark catalog (issue 21.3).

The Spark counterpart of `cxw.loader.load_into_duckdb`, without the copy: each entity becomes an unmanaged (external)
Parquet table over its landing directory `raw/<source>/<entity>/<load_id>/part-*.parquet` (recursive file lookup,
merged schema: every load, like the DuckDB table that appends them all). Dropping and re-creating such a table never
touches the files, so registering twice gives the same tables. An entity the raw contract declares but no load has
delivered a row of yet gets an empty table with the contract's columns (as `ensure_declared_tables` does on DuckDB):
an empty Parquet file, written by DuckDB from the contract's DuckDB types, so no type mapping is needed.

Not (yet) like the DuckDB loader: a load directory without `_load.json` (an extract still writing, or one that died)
is read too - the file glob cannot see the marker; `incomplete_loads` names them and the caller refuses to build
(`register_raw_tables` raises). No load bookkeeping (`_cxw.raw_loads`): the raw gate runs on DuckDB only.
See docs/scale-out.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cxw.loader import _LOAD_META_DDL, _ident, _quoted, complete_loads, raw_contract

log = logging.getLogger(__name__)


def incomplete_loads(raw_root: Path) -> list[Path]:
    """Load directories holding Parquet files but no `_load.json`."""
    if not raw_root.exists():
        return []
    return sorted(d for d in raw_root.glob("*/*/*") if d.is_dir() and not d.name.startswith(".")
                  and not (d / "_load.json").exists() and any(d.glob("*.parquet")))


def _empty_parquet(path: Path, columns: dict[str, str]) -> Path:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(f"cast(null as {t}) as {_quoted(c)}" for c, t in [*columns.items(), *_LOAD_META_DDL])
    con = duckdb.connect()
    try:
        con.execute(f"copy (select {cols} where false) to '{path}' (format parquet)")
    finally:
        con.close()
    return path


def register_raw_tables(spark, raw_root: Path, work_dir: Path, *, contract: dict | None = None) -> list[str]:
    """Create (or re-create) `raw_<source>.<entity>` in the Spark session's catalog for every landed entity with rows
    and every entity the raw contract declares. `work_dir` holds the empty contract files. Returns the table names."""
    raw_root = Path(raw_root).resolve()
    partial = incomplete_loads(raw_root)
    if partial:
        raise RuntimeError(f"refusing to register raw tables: {len(partial)} load(s) without _load.json "
                           f"(an extract still running or one that died), e.g. {partial[0]}")
    contract = raw_contract() if contract is None else contract
    rows: dict[tuple[str, str], int] = {}
    for ld in complete_loads(raw_root):
        key = (ld.source, ld.entity)
        rows[key] = rows.get(key, 0) + int(ld.meta.get("rows") or 0)
    wanted = sorted(set(rows) | {(s, e) for s, ents in contract.items() for e in ents})
    tables = []
    for source, entity in wanted:
        table = f"raw_{_ident(source)}.{_ident(entity)}"
        spark.sql(f"create database if not exists raw_{source}")
        spark.sql(f"drop table if exists {table}")  # unmanaged: the files stay
        if rows.get((source, entity)):
            location, glob = raw_root / source / entity, "part-*.parquet"
        else:
            cols = contract.get(source, {}).get(entity)
            if cols is None:  # landed empty and undeclared: only the load columns
                cols = {}
            location = _empty_parquet(Path(work_dir) / "empty_raw" / source / entity / "part-00000.parquet",
                                      cols).parent
            glob = "part-*.parquet"
        spark.sql(f"create table {table} using parquet options (path '{location}', recursiveFileLookup 'true', "
                  f"pathGlobFilter '{glob}', mergeSchema 'true')")
        tables.append(table)
    log.info("registered %d raw tables over %s", len(tables), raw_root)
    return tables
