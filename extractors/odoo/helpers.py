"""Odoo helpers: SQLAlchemy -> connectorx URLs, safe query building, Arrow typing (the mapping files: mapping.py)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import connectorx as cx
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import make_url

from .mapping import IDS_SUFFIX, TABLE_RE, Column, EntityMapping, MappingError, _ident

# ------------------------------------------------------------------------------------------------ connections
@dataclass
class Connection:
    dialect: str          # sqlite | postgresql | mysql
    cx_url: str
    secrets: List[str] = field(default_factory=list)


def to_connectorx(url: str) -> Connection:
    """SQLAlchemy URL -> connectorx connection string (driver suffixes dropped, sqlite path absolute)."""
    u = make_url(url)
    backend = u.get_backend_name()
    secrets = [u.password] if u.password else []
    if backend == "sqlite":
        db = u.database
        if not db or db == ":memory:":
            raise ValueError("odoo: an in-memory SQLite database cannot be read by connectorx")
        return Connection("sqlite", "sqlite://" + os.path.abspath(db), secrets)
    if backend in ("postgresql", "postgres"):
        scheme, dialect, port = "postgresql", "postgresql", 5432
    elif backend in ("mysql", "mariadb"):
        scheme, dialect, port = "mysql", "mysql", 3306
    else:
        raise ValueError(f"odoo: unsupported database backend {backend!r} (sqlite, postgresql, mysql/mariadb)")
    auth = ""
    if u.username:
        auth = quote(u.username, safe="")
        if u.password:
            auth += ":" + quote(str(u.password), safe="")
        auth += "@"
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in u.query.items())
    cx_url = f"{scheme}://{auth}{u.host or '127.0.0.1'}:{u.port or port}/{u.database or ''}"
    if query:
        cx_url += "?" + query
    return Connection(dialect, cx_url, secrets)


class DatabaseRejected(ConnectionError):
    """The database answered but refused: wrong user or password, a database that does not exist, no access - a
    configuration error (retrying cannot help), unlike a refused or timed-out connection (network: retried)."""


# what a server says when it answered and refused (MariaDB/MySQL error codes, PostgreSQL's FATAL texts)
REJECTED = re.compile(r"\b(1044|1045|1049|1698)\b|access denied|password authentication failed|authentication failed"
                      r"|role \S+ does not exist|database \S+ does not exist|unknown database|no pg_hba\.conf entry"
                      r"|permission denied", re.IGNORECASE)
# a read that failed because a mapped table is missing or not readable by the user
TABLE_REJECTED = re.compile(r"\b(1142|1146)\b|doesn't exist|does not exist|no such table|permission denied"
                            r"|command denied", re.IGNORECASE)


def preflight(url: str, conn: Connection, timeout_s: int = 10) -> None:
    """Fail fast with a clear, secret-free message when the database is unreachable (connectorx's pool would
    otherwise wait 30 s per attempt before giving up): :class:`DatabaseRejected` when the server answered and refused
    (credentials, database name, access), ``ConnectionError`` when it could not be reached."""
    if conn.dialect == "sqlite":
        path = conn.cx_url[len("sqlite://"):]
        if not os.path.exists(path):
            raise DatabaseRejected(f"odoo: SQLite database file {path} does not exist")
        return
    import sqlalchemy as sa  # local: only needed for the check

    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg2")
    elif u.drivername in ("mysql", "mariadb"):
        u = u.set(drivername="mysql+pymysql")
    args = {"connect_timeout": timeout_s}
    engine = sa.create_engine(u, connect_args=args, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - re-raised without the URL / password
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for secret in conn.secrets:
            first = first.replace(secret, "***")
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
        kind = DatabaseRejected if REJECTED.search(first) or code in (1044, 1045, 1049, 1698) else ConnectionError
        raise kind(f"odoo: cannot connect to the {conn.dialect} database: {first}") from None
    finally:
        engine.dispose()


def quote_ident(dialect: str, name: str) -> str:
    if "." in name:
        return ".".join(quote_ident(dialect, p) for p in name.split("."))
    _ident(name, "identifier")
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def ts_literal(dt: datetime) -> str:
    """A UTC timestamp literal built only from a datetime (never from user text): 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    Without a fraction when it is zero, so SQLite's text comparison works against second-resolution values."""
    if not isinstance(dt, datetime):
        raise TypeError("cursor bound must be a datetime")
    dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    text = dt.strftime("%Y-%m-%d %H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return f"'{text}'"


SQLITE_CASTS = {"json": ("TEXT", "''")}
NULL_FLAG = "__cxw_isnull"
RAW_SUFFIX = "__cxw_raw"
# SQLite numbers: the storage classes a column's value may have to be read as the number it is
SQLITE_NUMERIC = {"float": ("REAL", "0.0", "'integer', 'real'"), "int": ("INTEGER", "0", "'integer'")}


def select_sql(conn: Connection, m: EntityMapping, start: Optional[datetime], end: Optional[datetime],
               include_null_cursor: bool = False, skip: Any = ()) -> str:
    """The entity's SELECT; ``skip``: optional mapped columns the source table does not have (left out here,
    landed as NULL by :func:`normalize`)."""
    q = lambda n: quote_ident(conn.dialect, n)  # noqa: E731
    exprs = []
    for c in m.columns:
        if c.name in skip:
            continue
        s = q(c.src)          # the source column (a mapping may land it under another name)
        if c.expr:
            exprs.append(f"{c.expr} AS {q(c.name)}")
        elif c.type == "json" and conn.dialect == "postgresql":
            exprs.append(f"CAST({s} AS TEXT) AS {q(c.name)}")
        elif c.type == "json" and conn.dialect == "mysql":
            exprs.append(f"CAST({s} AS CHAR) AS {q(c.name)}")
        elif conn.dialect == "sqlite" and c.type in SQLITE_NUMERIC:
            # SQLite keeps any value in any column: CAST('327,80 EUR' AS REAL) is 327.0, CAST('1.234,56' AS REAL)
            # 1.234. Read the value only when it IS a number of the right class, and beside it what it was: ''
            # (a number), 'N' (NULL) or 'T' + the value as text, which normalize() parses strictly or flags. Both
            # never NULL (connectorx types an expression by its first row).
            cast, fill, native = SQLITE_NUMERIC[c.type]
            exprs.append(f"CAST(CASE WHEN typeof({s}) IN ({native}) THEN {s} ELSE {fill} END "
                         f"AS {cast}) AS {q(c.name)}")
            exprs.append(f"(CASE WHEN typeof({s}) IN ({native}) THEN '' WHEN {s} IS NULL THEN 'N' "
                         f"ELSE 'T' || CAST({s} AS TEXT) END) AS {q(c.name + RAW_SUFFIX)}")
        elif conn.dialect == "sqlite" and c.type in SQLITE_CASTS:
            # SQLite types values per row (NUMERIC affinity stores 25.0 as INTEGER 25) and connectorx infers an
            # expression's type from the first row (aborting on a later mismatch, failing on NULL). So read a
            # never-NULL value of one storage class plus a NULL flag, and rebuild the NULLs in Arrow.
            cast, fill = SQLITE_CASTS[c.type]
            exprs.append(f"CAST(COALESCE({s}, {fill}) AS {cast}) AS {q(c.name)}")
            exprs.append(f"(CASE WHEN {s} IS NULL THEN 1 ELSE 0 END) AS {q(c.name + NULL_FLAG)}")
        elif c.source and c.source != c.name:
            exprs.append(f"{s} AS {q(c.name)}")
        else:
            exprs.append(s)
    # the cursor and the tie-breaker are source columns: qualified with the table, so that a landed column of the
    # same name (an alias) never stands in for them in WHERE / ORDER BY
    t = q(m.table)
    cur, tie = f"{t}.{q(m.cursor)}" if m.cursor else None, f"{t}.{q(m.tie_breaker)}"
    sql = f"SELECT {', '.join(exprs)} FROM {t}"
    if m.cursor and start is not None and end is not None:
        cond = f"({cur} >= {ts_literal(start)} AND {cur} < {ts_literal(end)})"
        if include_null_cursor:
            cond = f"({cond} OR {cur} IS NULL)"
        sql += f" WHERE {cond}"
        sql += f" ORDER BY {cur}, {tie}"
    else:
        sql += f" ORDER BY {tie}"
    return sql


def ids_sql(conn: Connection, m: EntityMapping) -> str:
    """Every id present now (hard-delete reconciliation), typed like the entity's id column."""
    col = next(c for c in m.columns if c.name == m.id_column)
    q = lambda n: quote_ident(conn.dialect, n)  # noqa: E731
    expr = f"{col.expr} AS {q(col.name)}" if col.expr else f"{q(col.src)} AS {q(col.name)}"
    return f"SELECT {expr} FROM {q(m.table)} ORDER BY {q(col.name)}"


def ids_mapping(m: EntityMapping) -> EntityMapping:
    col = next(c for c in m.columns if c.name == m.id_column)
    return EntityMapping(m.entity + IDS_SUFFIX, m.table, [Column(col.name, col.type, col.expr, True, col.source)],
                         None, col.src, m.lookback, col.name, None)


# ------------------------------------------------------------------------------------------------ Arrow typing
ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
               "json": pa.string(), "timestamp": pa.timestamp("us"), "date": pa.date32()}


def _to_type(arr: pa.ChunkedArray, typ: str) -> pa.ChunkedArray:
    target = ARROW_TYPES[typ]
    if arr.type == target:
        return arr
    if typ == "bool" and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return pc.not_equal(arr, 0)
    if typ == "timestamp":
        if pa.types.is_timestamp(arr.type):
            if arr.type.tz is not None:
                arr = pc.cast(arr, pa.timestamp("us", tz="UTC"))
                return pc.cast(pc.local_timestamp(arr), target) if hasattr(pc, "local_timestamp") else \
                    pa.chunked_array([c.cast(pa.int64()).cast(target) for c in arr.chunks], target)
            return pc.cast(arr, target)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            arr = pc.replace_substring(arr, "T", " ")
            return pc.cast(pc.cast(arr, pa.timestamp("us")), target)
    if typ in ("string", "json") and not pa.types.is_string(arr.type):
        return pc.cast(arr, pa.string())
    # a safe cast: a value that does not fit in full (4.5 or 1e20 into an int, a decimal that loses digits) raises
    # instead of being truncated or wrapped; normalize() then types the column value by value and names the field
    return pc.cast(arr, target)


#: a number as a program writes it (C locale): no thousands separator, '.' as the decimal point, no unit
#: an int is an integer literal or an integral decimal ('7.0': a REAL of a SQLite float column is read as its text)
STRICT_NUMBER = {"float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$", "int": r"^\s*[+-]?\d+(\.0*)?\s*$"}
TYPE_ERROR_FIELDS = "_type_error_fields"    # "amount_total,amount_tax": the fields of the row that did not parse
TYPE_ERROR_VALUES = "_type_error_values"    # {"amount_total": "327,80 EUR"}: those values as delivered (JSON)


def _strict(text: pa.ChunkedArray, typ: str) -> Tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(typed values, failed mask) of strings: a value parses in full or is NULL with its mask set - never a
    guessed prefix ('327,80 EUR' is not 327.0) or a locale reading ('1.234,56' is not 1.234 or 1234.56)."""
    target = ARROW_TYPES[typ]
    if typ in STRICT_NUMBER:
        ok = pc.fill_null(pc.match_substring_regex(text, STRICT_NUMBER[typ]), True)
        good = pc.utf8_trim_whitespace(pc.if_else(ok, text, pa.scalar(None, text.type)))
        if typ == "int":      # '7.0' is 7 (never truncated: '7.5' did not match)
            good = pc.replace_substring_regex(good, r"\.0*$", "")
        return pc.cast(good, target), pc.invert(ok)
    return _by_value(text, typ)      # other types (timestamps, dates, bools): rare, value by value


def _by_value(arr: pa.ChunkedArray, typ: str) -> Tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(typed values, failed mask), each value cast on its own (only when the column as a whole did not cast)."""
    values, failed = [], []
    for v in arr.to_pylist():
        try:
            values.append(None if v is None else _to_type(pa.chunked_array([pa.array([v], arr.type)]), typ)[0].as_py())
            failed.append(False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError):
            values.append(None)
            failed.append(True)
    return pa.chunked_array([pa.array(values, ARROW_TYPES[typ])]), pa.chunked_array([pa.array(failed, pa.bool_())])


def _transform(arr: pa.ChunkedArray, c: Column) -> pa.ChunkedArray:
    """The mapping's value transforms on a typed column: ``divide_by`` (cents -> currency units; an exact integer
    divided by 100 is the double nearest the decimal amount, as a numeric(…, 2) read as double) and ``values``
    (source value -> landed value; others as delivered)."""
    if c.divide_by is not None:
        arr = pc.divide(arr, pa.scalar(c.divide_by, pa.float64()))
    if c.values:
        out = arr
        for src, landed in c.values.items():   # masks on the delivered values: a chain a->b, b->c never cascades
            out = pc.if_else(pc.fill_null(pc.equal(arr, src), False), pa.scalar(landed, pa.string()), out)
        arr = out
    return arr


def normalize(batch: pa.RecordBatch, m: EntityMapping) -> pa.Table:
    """The batch typed by the mapping. A value that does not parse as its mapped type lands as NULL and is named in
    ``_type_error_fields`` / ``_type_error_values`` (columns present only when a row of the batch has one), so
    staging quarantines the record with the field named; a missing optional column lands as NULL."""
    if batch.num_rows == 0:
        return empty_table(m)
    table = pa.Table.from_batches([batch])
    lower = [n.lower() for n in table.schema.names]
    arrays, fields = [], []
    errors: List[Tuple[str, pa.ChunkedArray, pa.ChunkedArray]] = []   # (field, failed mask, text as delivered)
    for c in m.columns:
        idx = table.schema.get_field_index(c.name)
        if idx < 0:
            # connectorx may change the case of names on some backends; match case-insensitively
            if c.name.lower() not in lower:
                if c.required:
                    raise MappingError(f"odoo: {m.table} has no column {c.name} (required by entity {m.entity})")
                arrays.append(pa.nulls(table.num_rows, ARROW_TYPES[c.type]))
                fields.append(pa.field(c.name, ARROW_TYPES[c.type]))
                continue
            idx = lower.index(c.name.lower())
        col = table.column(idx)
        raw_idx = table.schema.get_field_index(c.name + RAW_SUFFIX)
        if raw_idx >= 0:           # SQLite number: '' number, 'N' NULL, 'T<text>' stored as text
            raw = table.column(raw_idx)
            is_text = pc.starts_with(raw, "T")
            arr = pc.if_else(pc.equal(raw, "N"), pa.scalar(None, ARROW_TYPES[c.type]), _to_type(col, c.type))
            if pc.any(is_text).as_py():
                text = pc.if_else(is_text, pc.utf8_slice_codeunits(raw, 1), pa.scalar(None, pa.string()))
                parsed, failed = _strict(text, c.type)
                arr = pc.if_else(is_text, parsed, arr)
                if pc.any(failed).as_py():
                    errors.append((c.name, failed, text))
        elif (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) \
                and c.type not in ("string", "json"):
            # a text column where the mapping expects a number / time (the source's type drifted)
            col = col.cast(pa.string())
            try:
                if c.type in STRICT_NUMBER:
                    raise pa.ArrowInvalid("numbers are parsed strictly")
                arr = _to_type(col, c.type)          # the whole column parses (SQLite keeps timestamps as text)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arr, failed = _strict(col, c.type)
                failed = pc.and_(failed, pc.is_valid(col))
                if pc.any(failed).as_py():
                    errors.append((c.name, failed, col))
        else:
            try:
                arr = _to_type(col, c.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # a number that does not fit its mapped type in full (4.5 or 1e20 in an int column): NULL, named
                arr, failed = _by_value(col, c.type)
                failed = pc.and_(failed, pc.is_valid(col))
                if pc.any(failed).as_py():
                    errors.append((c.name, failed, col))
            flag = table.schema.get_field_index(c.name + NULL_FLAG)
            if flag >= 0:
                arr = pc.if_else(pc.equal(table.column(flag), 1), pa.scalar(None, arr.type), arr)
        arrays.append(_transform(arr, c))
        fields.append(pa.field(c.name, ARROW_TYPES[c.type]))
    if errors:
        names: List[Optional[str]] = [None] * table.num_rows
        values: List[Optional[str]] = [None] * table.num_rows
        for name, failed, text in errors:
            for i in pc.indices_nonzero(pc.fill_null(failed, False).combine_chunks()).to_pylist():
                names[i] = name if names[i] is None else f"{names[i]},{name}"
                got = json.loads(values[i]) if values[i] else {}
                got[name] = text[i].as_py()
                values[i] = json.dumps(got, ensure_ascii=False, default=str)   # a Decimal / date as text
        arrays += [pa.array(names, pa.string()), pa.array(values, pa.string())]
        fields += [pa.field(TYPE_ERROR_FIELDS, pa.string()), pa.field(TYPE_ERROR_VALUES, pa.string())]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def type_error_counts(table: pa.Table) -> Dict[str, int]:
    """{field: rows} of the values that did not parse in a normalized table (empty when there are none)."""
    if TYPE_ERROR_FIELDS not in table.schema.names:
        return {}
    out: Dict[str, int] = {}
    for v in pc.drop_null(table.column(TYPE_ERROR_FIELDS)).to_pylist():
        for name in v.split(","):
            out[name] = out.get(name, 0) + 1
    return out


def source_columns(conn: Connection, table: str) -> Optional[List[str]]:
    """The columns the source table has now (catalog query), None when the catalog cannot say (then the read itself
    reports a missing column)."""
    _ident(table, "table", TABLE_RE)
    schema, _, name = table.rpartition(".")
    if conn.dialect == "sqlite":
        sql = f"SELECT name AS column_name FROM pragma_table_info('{name}')"
    elif conn.dialect == "postgresql":
        where = f"'{schema}'" if schema else "current_schema()"
        sql = ("SELECT column_name::text AS column_name FROM information_schema.columns "
               f"WHERE table_schema = {where} AND table_name = '{name}'")
    else:
        where = f"'{schema}'" if schema else "DATABASE()"
        sql = ("SELECT CAST(column_name AS CHAR) AS column_name FROM information_schema.columns "
               f"WHERE table_schema = {where} AND table_name = '{name}'")
    try:
        got = cx.read_sql(conn.cx_url, sql, return_type="arrow")
    except BaseException as exc:  # noqa: BLE001 - connectorx panics are BaseException; the read will tell
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    if got.num_rows == 0:
        return None
    return [str(v) for v in got.column(0).to_pylist()]


def empty_table(m: EntityMapping) -> pa.Table:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in m.columns]).empty_table()


def read_batches(conn: Connection, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    reader = cx.read_sql(conn.cx_url, sql, return_type="arrow_stream", batch_size=batch_rows)
    for batch in reader:
        yield batch
