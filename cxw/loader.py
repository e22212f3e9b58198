"""Load landed raw files into the build database's `raw_<source>` schemas (DuckDB: `load_into_duckdb`;
PostgreSQL: `load_into_postgres` in cxw/loader_postgres.py, same contract, COPY-based; `cxw.tasks.load_raw` picks by
CXW_DBT_TARGET).

The extractors never open the warehouse; this is the one step that copies their immutable Parquet loads in.
Each `raw_<source>.<entity>` table holds every complete load (a directory with `_load.json`), so staging can
deduplicate by natural key and latest version, and the ledger can count what each load brought.

DuckDB: append-only per new load (`load_into_duckdb`), with a per-load count of rows that are new content, so a run
whose loads only repeat what is held can skip the build (`content_fingerprint`, `cxw.tasks.dbt_build`).
PostgreSQL: a full, idempotent rebuild of each table whose set of loads changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import duckdb_config

log = logging.getLogger(__name__)

META_COLUMNS = ("_load_id", "_extracted_at", "_record_seq")  # added by extractors/common/landing.py
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class RawLoadError(RuntimeError):
    """A raw table could not be loaded. The message names the target, source, entity and, when the database's error
    says so, the column and the load; never a value (issue 15.4): DuckDB quotes the value it could not cast ("Type
    VARCHAR with value 'jane@example.org' can't be cast ..."), PostgreSQL's COPY context the whole field."""


# a column name as the databases quote it in an error: DuckDB `column "p"`, PostgreSQL COPY `column p: "…"`
_ERR_COLUMN = re.compile(r'column "([A-Za-z_][A-Za-z0-9_]*)"|\bcolumn ([A-Za-z_][A-Za-z0-9_]*):')


def _load_error(target: str, source: str, entity: str, exc: BaseException, loads: list) -> RawLoadError:
    """`exc` (a database / Arrow error while loading one raw table) as a RawLoadError fit for a log: what failed
    where, with the error's own words and every value masked (`mask_values`: quoted text, e-mail addresses, digit
    runs). The caller raises it `from None`, so the original text is not chained into the traceback either."""
    from extractors.common.redact import mask_values

    text = str(exc)
    diag = getattr(exc, "diag", None)  # psycopg2: the COPY context names the column (and quotes the value)
    context = " ".join(filter(None, [text, getattr(diag, "context", None)]))
    m = _ERR_COLUMN.search(context)
    column = next((g for g in m.groups() if g), None) if m else None
    load_ids = [ld.load_id for ld in loads if ld.load_id in text]
    where = "".join([f", column {column}" if column else "",
                     f", load {load_ids[0]}" if len(load_ids) == 1 else ""])
    return RawLoadError(f"loading raw {source}.{entity} into {target} failed{where}: {type(exc).__name__}: "
                        f"{mask_values(text)} (values masked; the rows are in the raw files)")


def connect_writer(build_db: Path, wait_s: float | None = None):
    """Open the DuckDB build database for writing; while another process holds it, wait (up to ``wait_s``, default
    env CXW_BUILD_DB_LOCK_WAIT_S or 600) rather than fail. The `cxw_build_db` pool keeps the DAG's writers apart under
    a scheduler; `airflow dags test --use-executor` ignores pools, and a manual `dbt run` can hold the file too.
    Returns (connection, seconds waited)."""
    return connect_build_db(build_db, read_only=False, wait_s=wait_s)


def lock_wait_s() -> float:
    """CXW_BUILD_DB_LOCK_WAIT_S (default 600): how long a task waits for the build database's lock."""
    from .settings import settings

    return float(settings().build_db_lock_wait_s)


def is_lock_error(exc_or_text) -> bool:
    """DuckDB's "Could not set lock on file ...: Conflicting lock is held in ..." (another process has the file)."""
    text = str(exc_or_text).lower()
    return "could not set lock" in text or "conflicting lock" in text


def connect_build_db(build_db: Path, read_only: bool = False, wait_s: float | None = None):
    """Open the DuckDB build database (for writing, or read-only); while another process holds a conflicting lock
    (a writer excludes every other process, readers exclude a writer), wait up to ``wait_s`` (default
    CXW_BUILD_DB_LOCK_WAIT_S) rather than fail. Used by every task that opens the build database: the loader,
    dbt_build (before dbt starts and for its bookkeeping), the build fingerprint, validate and publish.
    Returns (connection, seconds waited)."""
    import duckdb

    wait_s = lock_wait_s() if wait_s is None else wait_s
    t0 = time.monotonic()
    delay, logged = 0.1, False
    while True:
        try:
            return (duckdb.connect(str(build_db), read_only=read_only, config=duckdb_config()),
                    round(time.monotonic() - t0, 3))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() - t0 + delay > wait_s:
                raise
            if not logged:
                log.info("build database %s is held by another process; waiting up to %.0f s "
                         "(CXW_BUILD_DB_LOCK_WAIT_S)", build_db, wait_s)
                logged = True
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)


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


def _load_row(source: str, entity: str, ld: RawLoad) -> list:
    m = ld.meta
    return [source, entity, ld.load_id, str(m.get("extracted_at")), str(m.get("window_start")),
            str(m.get("window_end")), int(m.get("rows") or 0), int(m.get("duplicates_in_load") or 0),
            int(m.get("dead_letters") or 0)]


# Entities whose new load can REMOVE rows from what staging sees, so "every row already seen" does not mean "no
# change": a GA4 export day re-delivered replaces the earlier delivery of that day (fewer rows are possible), and an
# Odoo `<table>__ids` load is a full id snapshot (a missing id is a hard delete).
def _replaces_earlier_loads(source: str, entity: str) -> bool:
    return (source, entity) == ("ga4", "events") or entity.endswith("__ids")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _content_hash(columns: list[str]) -> str:
    """DuckDB expression hashing a raw row's content: every column but the load metadata."""
    cols = [c for c in columns if c not in META_COLUMNS]
    return "hash(" + ", ".join(_quoted(c) for c in cols) + ")" if cols else "0"


def _new_content_rows(con, table: str, source: str, entity: str, load_id: str) -> int:
    """How many rows of load `load_id` (already in `table`) are not exact copies of a row of an earlier load.

    0 means the load cannot change anything downstream: staging keeps the latest version per key, and an identical
    version only moves the key's `_load_id`, which no mart carries (the ledger counts such rows as duplicates).
    For entities whose loads replace earlier ones (`_replaces_earlier_loads`) an id snapshot is compared as a whole
    with the previous snapshot (the symmetric difference), and a GA4 load with rows always counts as new."""
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    h = _content_hash(cols)
    if entity.endswith("__ids"):
        prev = con.execute(f"select max(_load_id) from {table} where _load_id < ?", [load_id]).fetchone()[0]
        if prev is None:
            return con.execute(f"select count(*) from {table} where _load_id = ?", [load_id]).fetchone()[0]
        return con.execute(
            f"select count(*) from ((select {h} from {table} where _load_id = $1 except all "
            f"select {h} from {table} where _load_id = $2) union all (select {h} from {table} where _load_id = $2 "
            f"except all select {h} from {table} where _load_id = $1))", [load_id, prev]).fetchone()[0]
    if _replaces_earlier_loads(source, entity):
        return con.execute(f"select count(*) from {table} where _load_id = ?", [load_id]).fetchone()[0]
    return con.execute(
        f"select count(*) from (select {h} as h from {table} where _load_id = $1) n "
        f"where not exists (select 1 from {table} o where o._load_id < $1 and {h} = n.h)", [load_id]).fetchone()[0]


def load_into_duckdb(raw_root: Path, build_db: Path, *, force: bool = False,
                     sources: list[str] | None = None) -> dict:
    """Bring raw_<source>.<entity> tables in the DuckDB build database up to date with the complete raw loads.

    Append-only: a load already in its table (bookkeeping in `_cxw.raw_table_loads`) is never read again; new loads
    are inserted `by name` (a column first seen in a new load is added to the table). The table is rebuilt from all
    its files only when it is missing, when a load it holds has disappeared from disk (retention), when a new
    load's columns cannot be appended (a type change), or with `force`. Each table changes in one transaction.

    The report says, per table, how many rows were appended and how many of them are new content
    (`_new_content_rows`); `content_fingerprint` (over the loads that brought new content) is what `dbt_build`
    compares with the last published build to skip work when nothing new arrived.

    ``sources``: only these sources' tables (the DAG loads each source as soon as its extract is done).
    """
    loads = [ld for ld in complete_loads(raw_root) if sources is None or ld.source in sources]
    groups: dict[tuple[str, str], list[RawLoad]] = {}
    for ld in loads:
        groups.setdefault((ld.source, ld.entity), []).append(ld)

    build_db.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {"tables": {}, "skipped": [], "seconds": 0.0, "target": "duckdb"}
    con, report["lock_wait_s"] = connect_writer(build_db)
    t0 = time.perf_counter()
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
        # which loads each raw table holds, and whether each brought content not seen in an earlier load
        con.execute(
            "create table if not exists _cxw.raw_table_loads (source varchar, entity varchar, load_id varchar, "
            "rows bigint, new_content_rows bigint, appended_at timestamp, primary key (source, entity, load_id))"
        )
        for (source, entity), group in sorted(groups.items()):
            table = f"raw_{_ident(source)}.{_ident(entity)}"
            t1 = time.perf_counter()
            held = {r[0]: r[1] for r in con.execute(
                "select load_id, rows from _cxw.raw_table_loads where source = ? and entity = ?",
                [source, entity]).fetchall()}
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [f"raw_{source}", entity],
            ).fetchone()[0]
            on_disk = {ld.load_id for ld in group}
            new = [ld for ld in group if ld.load_id not in held]
            # a table without bookkeeping was written by an older loader: rebuild it once
            rebuild = force or not exists or not held or not set(held) <= on_disk
            # only empty loads so far (the table has the contract's columns, `ensure_declared_tables`): the first
            # rows rebuild it from the files, so it holds exactly what was delivered
            rebuild = rebuild or (not any(held.values()) and any(ld.files for ld in new))
            if not rebuild and not new:
                report["skipped"].append(table)
                continue
            mode = "rebuild" if rebuild else "append"
            con.execute("begin")
            try:
                con.execute(f"create schema if not exists raw_{source}")
                if not rebuild:
                    appended = _append(con, table, new)
                    if appended is None:  # columns cannot be appended: rebuild this table from its files
                        con.execute("rollback")
                        con.execute("begin")
                        rebuild, mode = True, "rebuild (schema change)"
                if rebuild:
                    files = [str(f) for ld in group for f in ld.files]
                    if files:
                        con.execute(f"create or replace table {table} as select * from "
                                    "read_parquet(?, union_by_name = true)", [files])
                    else:
                        con.execute(f"create or replace table {table} (_load_id varchar, "
                                    "_extracted_at timestamp with time zone, _record_seq bigint)")
                    con.execute("delete from _cxw.raw_table_loads where source = ? and entity = ?", [source, entity])
                    new = list(group)
                ids = [ld.load_id for ld in new]
                per_load = dict(con.execute(
                    f"select _load_id, count(*) from {table} where list_contains(?, _load_id) group by 1",
                    [ids]).fetchall()) if ids else {}
                appended_rows = sum(per_load.values())
                first_id = min([ld.load_id for ld in group])
                new_content = 0
                for ld in new:
                    con.execute("insert or replace into _cxw.raw_loads values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                _load_row(source, entity, ld))
                    n = int(per_load.get(ld.load_id, 0))
                    if not n:
                        fresh = 0
                    elif ld.load_id == first_id or (_replaces_earlier_loads(source, entity)
                                                    and not entity.endswith("__ids")):
                        fresh = n  # nothing earlier to repeat / a GA4 delivery always counts (no query needed)
                    else:
                        fresh = _new_content_rows(con, table, source, entity, ld.load_id)
                    new_content += fresh
                    con.execute("insert or replace into _cxw.raw_table_loads values (?, ?, ?, ?, ?, now()::timestamp)",
                                [source, entity, ld.load_id, n, fresh])
                rows = con.execute(f"select count(*) from {table}").fetchone()[0]
                con.execute("insert or replace into _cxw.raw_tables values (?, ?, ?, ?, now()::timestamp)",
                            [source, entity, _fingerprint(group), rows])
                con.execute("commit")
            except Exception as exc:  # a database / file error can quote a value: masked (issue 15.4)
                con.execute("rollback")
                raise _load_error("duckdb", source, entity, exc, group) from None
            except BaseException:
                con.execute("rollback")
                raise
            secs = time.perf_counter() - t1
            report["tables"][table] = {"mode": mode, "rows": appended_rows, "table_rows": rows, "loads": len(new),
                                       "new_content_rows": int(new_content), "seconds": round(secs, 3),
                                       "rows_per_s": round(appended_rows / secs) if secs > 0 else None}
            log.info("%s %s: %s rows from %s loads (%s new content) in %.2fs", mode, table, appended_rows, len(new),
                     new_content, secs)
        report["declared"] = ensure_declared_tables(con, sources)
        report["content_fingerprint"] = content_fingerprint(con)
        if report["tables"] or report["declared"]:
            con.execute("checkpoint")
    finally:
        con.close()
    report["seconds"] = round(time.perf_counter() - t0, 3)
    report["rows"] = sum(t["rows"] for t in report["tables"].values())
    report["new_content_rows"] = sum(t["new_content_rows"] for t in report["tables"].values())
    return report


CONTRACT_FILE = Path(__file__).with_name("raw_contract.yml")
_LOAD_META_DDL = (("_load_id", "VARCHAR"), ("_extracted_at", "TIMESTAMP WITH TIME ZONE"), ("_record_seq", "BIGINT"))


def raw_contract(path: Path | None = None) -> dict[str, dict[str, dict[str, str]]]:
    """``{source: {entity: {column: DuckDB type}}}`` from cxw/raw_contract.yml: every raw table staging reads."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml: ≈10× faster than the pure-Python parser
    return yaml.load(Path(path or CONTRACT_FILE).read_text(), Loader=loader) or {}


def contract_from_database(con) -> dict[str, dict[str, dict[str, str]]]:
    """The raw tables of a DuckDB build database as a contract (to write cxw/raw_contract.yml from a demo run's raw
    tables: ``yaml.safe_dump(contract_from_database(con), width=10000)``; keep the header comment)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for schema, table, column, typ in con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_schema like 'raw\\_%' escape '\\' order by 1, 2, ordinal_position").fetchall():
        if column not in META_COLUMNS:
            out.setdefault(schema[4:], {}).setdefault(table, {})[column] = typ
    return out


def ensure_declared_tables(con, sources: list[str] | None = None, contract: dict | None = None) -> list[str]:
    """Empty is a valid state: every raw table the contract declares (of ``sources``, or all) exists, and one that
    holds no row yet has the contract's columns. A missing table (no load of the entity ever completed: a first run
    that failed before it, an entity switched on later) is created empty; a table built from empty loads only (just the
    load columns) gets the declared columns added. A table holding rows is left as its loads made it (a column the
    source stopped delivering stays missing, for the raw gate to name). Returns the tables created or widened.

    No row is invented and nothing is registered in the load bookkeeping: the first load with rows finds the table
    without bookkeeping and rebuilds it from its files (`load_into_duckdb`), so the declared types never outlive the
    first real rows. One catalog query when nothing is to do."""
    contract = raw_contract() if contract is None else contract
    wanted = {(s, e): cols for s, ents in contract.items() if sources is None or s in sources
              for e, cols in ents.items()}
    rows = {(s, e): n for s, e, n in con.execute("select source, entity, rows from _cxw.raw_tables").fetchall()}
    wanted = {k: v for k, v in wanted.items() if not rows.get(k)}   # a table holding rows is never touched
    if not wanted:
        return []
    have: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
            "select table_schema, table_name, lower(column_name) from information_schema.columns "
            "where list_contains(?, table_schema)", [sorted({f"raw_{s}" for s, _ in wanted})]).fetchall():
        have.setdefault((schema[4:], table), set()).add(column)
    changed: list[str] = []
    for (source, entity), cols in sorted(wanted.items()):
        table = f"raw_{_ident(source)}.{_ident(entity)}"
        present = have.get((source, entity))
        if present is None:
            ddl = ", ".join(f"{_quoted(c)} {t}" for c, t in [*cols.items(), *_LOAD_META_DDL])
            con.execute(f"create schema if not exists raw_{source}")
            con.execute(f"create table {table} ({ddl})")
        else:
            missing = [(c, t) for c, t in cols.items() if c.lower() not in present]
            if not missing or con.execute(f"select count(*) from {table}").fetchone()[0]:
                continue
            for c, t in missing:
                con.execute(f"alter table {table} add column {_quoted(c)} {t}")
        changed.append(table)
        log.info("%s: no row delivered yet, %s with the contract's columns (cxw/raw_contract.yml)", table,
                 "created" if present is None else "widened")
    return changed


def _append(con, table: str, new: list[RawLoad]) -> int | None:
    """Insert the files of `new` loads into `table` by column name; add columns first seen now. None when a column's
    type differs from the table's (the caller rebuilds)."""
    files = [str(f) for ld in new for f in ld.files]
    if not files:
        return 0
    have = {r[0].lower(): r[1] for r in con.execute(f"describe {table}").fetchall()}
    incoming = con.execute("describe select * from read_parquet(?, union_by_name = true)", [files]).fetchall()
    for name, typ, *_ in incoming:
        cur = have.get(name.lower())
        if cur is None:
            con.execute(f"alter table {table} add column {_quoted(name)} {typ}")
        elif cur == '"NULL"' and typ != '"NULL"':  # every earlier row was null: the column takes the new type
            con.execute(f"alter table {table} alter column {_quoted(name)} type {typ}")
        elif cur != typ and typ != '"NULL"':
            return None
    con.execute(f"insert into {table} by name select * from read_parquet(?, union_by_name = true)", [files])
    return 1


def content_fingerprint(con) -> str:
    """Fingerprint of what the raw tables hold, over the loads that brought new content (plus each table's column
    list): loads that only repeated rows already held leave it unchanged."""
    h = hashlib.sha256()
    for source, entity, load_id in con.execute(
            "select source, entity, load_id from _cxw.raw_table_loads where new_content_rows > 0 "
            "order by 1, 2, 3").fetchall():
        h.update(f"{source}/{entity}/{load_id}\n".encode())
    for schema, table, cols in con.execute(
            "select table_schema, table_name, string_agg(column_name || ' ' || data_type, ',' order by column_name) "
            "from information_schema.columns where table_schema like 'raw\\_%' escape '\\' "
            "group by 1, 2 order by 1, 2").fetchall():
        h.update(f"{schema}.{table}({cols})\n".encode())
    return h.hexdigest()
