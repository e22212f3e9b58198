"""Load landed raw files into the build database's `raw_<source>` schemas.

The extractors never open the warehouse; this is the one step that copies their immutable Parquet loads in.
Each `raw_<source>.<entity>` table holds every complete load (a directory with `_load.json`), so staging can
deduplicate by natural key and latest version, and the ledger can count what each load brought.

The load is a full, idempotent rebuild of each table from the files (DuckDB reads Parquet at millions of rows per
second), skipped when the set of loads has not changed since the last run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"refusing identifier {name!r}: raw source/entity names must match {_IDENT.pattern}")
    return name


@dataclass
class RawLoad:
    source: str
    entity: str
    load_id: str
    path: Path
    meta: dict
    files: list[Path] = field(default_factory=list)


def complete_loads(raw_root: Path) -> list[RawLoad]:
    """Every complete load under raw_root, sorted by (source, entity, load_id). Incomplete ones are ignored."""
    loads: list[RawLoad] = []
    if not raw_root.exists():
        return loads
    for meta_file in sorted(raw_root.glob("*/*/*/_load.json")):
        load_dir = meta_file.parent
        if load_dir.name.startswith("."):
            continue
        entity_dir = load_dir.parent
        source_dir = entity_dir.parent
        meta = json.loads(meta_file.read_text())
        files = sorted(load_dir.glob("*.parquet"))
        loads.append(RawLoad(source_dir.name, entity_dir.name, load_dir.name, load_dir, meta, files))
    return loads


def _fingerprint(loads: list[RawLoad]) -> str:
    h = hashlib.sha256()
    for ld in loads:
        h.update(f"{ld.source}/{ld.entity}/{ld.load_id}:{len(ld.files)}\n".encode())
    return h.hexdigest()


def load_into_duckdb(raw_root: Path, build_db: Path, *, force: bool = False) -> dict:
    """Rebuild raw_<source>.<entity> tables in the DuckDB build database from the complete raw loads."""
    import duckdb

    loads = complete_loads(raw_root)
    groups: dict[tuple[str, str], list[RawLoad]] = {}
    for ld in loads:
        groups.setdefault((ld.source, ld.entity), []).append(ld)

    build_db.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {"tables": {}, "skipped": [], "seconds": 0.0}
    t0 = time.perf_counter()
    con = duckdb.connect(str(build_db))
    try:
        con.execute("create schema if not exists _cxw")
        con.execute(
            "create table if not exists _cxw.raw_tables (source varchar, entity varchar, fingerprint varchar, "
            "rows bigint, loaded_at timestamp, primary key (source, entity))"
        )
        con.execute(
            "create table if not exists _cxw.raw_loads (source varchar, entity varchar, load_id varchar, "
            "extracted_at varchar, window_start varchar, window_end varchar, rows_in_manifest bigint, "
            "duplicates_in_load bigint, dead_letters bigint, primary key (source, entity, load_id))"
        )
        for (source, entity), group in sorted(groups.items()):
            table = f"raw_{_ident(source)}.{_ident(entity)}"
            fp = _fingerprint(group)
            prev = con.execute(
                "select fingerprint from _cxw.raw_tables where source = ? and entity = ?", [source, entity]
            ).fetchone()
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [f"raw_{source}", entity],
            ).fetchone()[0]
            if not force and prev and prev[0] == fp and exists:
                report["skipped"].append(table)
                continue
            files = [str(f) for ld in group for f in ld.files]
            t1 = time.perf_counter()
            con.execute("begin")
            con.execute(f"create schema if not exists raw_{source}")
            if files:
                con.execute(
                    f"create or replace table {table} as select * from read_parquet(?, union_by_name = true)",
                    [files],
                )
                rows = con.execute(f"select count(*) from {table}").fetchone()[0]
            else:
                rows = 0
            for ld in group:
                m = ld.meta
                con.execute(
                    "insert or replace into _cxw.raw_loads values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [source, entity, ld.load_id, str(m.get("extracted_at")), str(m.get("window_start")),
                     str(m.get("window_end")), int(m.get("rows") or 0), int(m.get("duplicates_in_load") or 0),
                     int(m.get("dead_letters") or 0)],
                )
            con.execute(
                "insert or replace into _cxw.raw_tables values (?, ?, ?, ?, now()::timestamp)",
                [source, entity, fp, rows],
            )
            con.execute("commit")
            secs = time.perf_counter() - t1
            report["tables"][table] = {"rows": rows, "loads": len(group), "seconds": round(secs, 3),
                                       "rows_per_s": round(rows / secs) if secs > 0 else None}
            log.info("loaded %s: %s rows from %s loads in %.2fs", table, rows, len(group), secs)
        con.execute("checkpoint")
    finally:
        con.close()
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report
