"""GA4 helpers: list daily export files (fsspec), fingerprint them, read a day with in-memory DuckDB."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from datetime import date, datetime
from typing import Any, Dict, List, Optional, Tuple

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors.common.redact import redact_url
from extractors.common.settings import ConfigurationError

from .settings import FILE_PREFIX, FILE_SUFFIXES, GA4_SCHEMA, MAX_LINE_BYTES, READ_COLUMNS, SCHEMA_JSON

DAY_RE = re.compile(r"^events_(\d{8})(?:\.(?:json|ndjson|jsonl)(?:\.gz)?)?$")
INTRADAY_RE = re.compile(r"^events_intraday_(\d{8})(?:\.(?:json|ndjson|jsonl)(?:\.gz)?)?$")


def export_table(day: date, intraday: bool = False) -> str:
    """The BigQuery table a day's rows came from: ``events_YYYYMMDD`` or ``events_intraday_YYYYMMDD``."""
    return ("events_intraday_" if intraday else "events_") + day.strftime("%Y%m%d")


class ExportDir:
    """A local directory or fsspec URL holding ``events_YYYYMMDD.json[.gz]`` files / ``events_YYYYMMDD/`` dirs."""

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = protocol in ("file", "local")
        self.protocol = protocol
        self.intraday: Dict[date, List[Dict[str, Any]]] = {}   # filled by days(): the intraday tables listed

    def days(self) -> Dict[date, List[Dict[str, Any]]]:
        """{day: [file info dicts]} for every export day found (folders expanded to their data files)."""
        out: Dict[date, List[Dict[str, Any]]] = {}
        self.intraday = {}
        for info in self._ls():
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            m = DAY_RE.match(name)
            into = out
            if not m:
                m = INTRADAY_RE.match(name)
                into = self.intraday
            if not m:
                continue
            ymd = m.group(1)
            try:
                day = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))    # (strptime costs ~50 us a name)
            except ValueError:
                continue
            if info.get("type") == "directory":
                files = [f for f in self.fs.find(info["name"], detail=True).values()
                         if f["name"].endswith(FILE_SUFFIXES)]
            elif name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIXES):
                files = [info]
            else:
                continue
            into.setdefault(day, []).extend(sorted(files, key=lambda f: f["name"]))
        for d in [d for d in self.intraday if not self.intraday[d]]:
            del self.intraday[d]
        return out

    def _ls(self) -> List[Dict[str, Any]]:
        """The export folder's entries with their size and mtime: ONE listing. A local folder is read with
        ``os.scandir`` (one stat per entry, nanosecond mtimes kept as ``mtime_ns``), any other filesystem with
        fsspec's ``ls(detail=True)`` (object stores report size, mtime and ETag/md5 in the listing)."""
        if not self.local:
            return self.fs.ls(self.root, detail=True)
        out = []
        with os.scandir(self.root) as entries:
            for e in entries:
                try:
                    is_dir = e.is_dir()
                    st = None if is_dir else e.stat()
                except OSError:       # vanished while listed
                    continue
                out.append({"name": e.path, "type": "directory" if is_dir else "file",
                            "size": None if st is None else st.st_size,
                            "mtime_ns": None if st is None else st.st_mtime_ns})
        return out

    def fingerprint(self, files: List[Dict[str, Any]]) -> str:
        """size + mtime + etag/md5 (whatever the filesystem reports) of every file of a day - all from the listing:
        no file is opened or read."""
        parts = []
        for f in files:
            mtime = f.get("mtime") or f.get("LastModified") or f.get("updated") or f.get("created")
            if self.local:
                mtime = f.get("mtime_ns")
                if mtime is None:     # a file of a sharded day folder (listed by fsspec's find)
                    mtime = os.stat(f["name"]).st_mtime_ns
            etag = f.get("ETag") or f.get("etag") or f.get("md5Hash") or f.get("md5")
            parts.append(f"{f['name'].rsplit('/', 1)[-1]}|{f.get('size')}|{mtime}|{etag}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def duck_path(self, name: str) -> str:
        return name if self.local else f"{self.protocol}://{name}"

    def read_bytes(self, name: str) -> bytes:
        """The decompressed bytes of one export file."""
        data = self.fs.cat_file(name)
        return gzip.decompress(data) if name.endswith(".gz") else data

    def open_text(self, name: str):
        fh = self.fs.open(name, "rb")
        if name.endswith(".gz"):
            return gzip.open(fh, "rt", encoding="utf-8", errors="replace")
        return open(name, "r", encoding="utf-8", errors="replace") if self.local else \
            __import__("io").TextIOWrapper(fh, encoding="utf-8", errors="replace")


def connect(export: ExportDir) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()  # in-memory: never the warehouse file
    con.execute("SET enable_progress_bar = false")  # no progress bars in task logs
    if not export.local:
        con.register_filesystem(export.fs)
    return con


def _extras_sql(expr: str, schema: Dict[str, Any]) -> str:
    """SQL yielding a JSON object of the keys of ``expr`` (a JSON object) that ``schema`` does not know,
    recursing into known objects; '{}' when there are none. Unknown keys inside list elements (event_params,
    items, user_properties) are not inspected."""
    patch = json.dumps({k: None for k in schema})
    out = f"json_merge_patch(COALESCE({expr}, '{{}}'), '{patch}')"
    for key, sub in schema.items():
        if isinstance(sub, dict):
            inner = _extras_sql(f"json_extract({expr}, '$.\"{key}\"')", sub)
            out = f"json_merge_patch({out}, json_object('{key}', NULLIF({inner}, '{{}}')))"
    return out



EXTRAS_SQL = f"NULLIF(CAST({_extras_sql('CAST(line AS JSON)', GA4_SCHEMA)} AS VARCHAR), '{{}}')"


class Ga4ReadError(RuntimeError):
    """Reading an export file failed. The message names the file and the error, never a line of it (an event line
    holds identifiers: user_pseudo_id, user_id)."""


class Ga4ConfigError(Ga4ReadError, ConfigurationError):
    """The export folder (CXW_GA4_EXPORT_URL) does not exist, is not a folder, or the credentials may not list it:
    a configuration / authorisation error, never retried (an empty folder is not one: no day exported yet)."""

    def __init__(self, message: str, *, setting: str, fix: str) -> None:
        Ga4ReadError.__init__(self, message)
        self.source, self.setting, self.endpoint, self.fix = "ga4", setting, None, fix


def list_export(url: str, storage_options: Optional[Dict[str, Any]] = None
                ) -> Tuple["ExportDir", Dict[date, List[Dict[str, Any]]]]:
    """(the export folder, its days) - ONE listing. A folder that does not exist or cannot be listed with the
    configured credentials is a :class:`Ga4ConfigError` naming CXW_GA4_EXPORT_URL (no retry can help); other errors
    (network) propagate unchanged and keep their retries."""
    where = redact_url(url) if "://" in url else url
    try:
        export = ExportDir(url, storage_options)
    except (ValueError, ImportError) as exc:   # fsspec: unknown protocol, or its filesystem package is missing
        raise Ga4ConfigError(f"ga4: the export URL {where} cannot be opened: {type(exc).__name__}",
                             setting="CXW_GA4_EXPORT_URL",
                             fix="set CXW_GA4_EXPORT_URL to a local folder or an fsspec URL (gs://, s3://, ...) whose "
                                 "filesystem package is installed") from None
    try:
        return export, export.days()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise Ga4ConfigError(f"ga4: the export folder {where} does not exist or is not a folder "
                             f"({type(exc).__name__})", setting="CXW_GA4_EXPORT_URL",
                             fix="set CXW_GA4_EXPORT_URL to the folder the BigQuery export writes "
                                 "events_YYYYMMDD files to") from None
    except PermissionError as exc:
        raise Ga4ConfigError(f"ga4: the export folder {where} cannot be listed: permission denied "
                             f"({type(exc).__name__})", setting="CXW_GA4_EXPORT_URL",
                             fix="grant the credentials of CXW_GA4_EXPORT_URL (the storage options / service "
                                 "account) list and read access to the export folder") from None


def safe_duck_error(exc: BaseException) -> str:
    """A DuckDB error without the record it quotes: a CSV error prints the offending line ("Original Line: ...")
    and a conversion error the value; only the error's first line is kept, cut before any quoted text."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = first.split("Original Line", 1)[0]
    return re.split(r"['\"]", first, maxsplit=1)[0].strip()


#: a line the reader could not decode: (file, 1-based line number, the line's bytes as delivered)
UndecodableLine = Tuple[str, int, bytes]


def stage_day_full(con: duckdb.DuckDBPyConnection, export: ExportDir, files: List[Dict[str, Any]]
                   ) -> Tuple[int, List[Tuple[str, str]], int, List[UndecodableLine]]:
    """Read a day's lines into the temp table ``ga4_lines``; returns (good rows, [(file, bad line)], the number of
    byte-identical duplicate event lines (GA4 has no event id: an exact repeat is the only duplicate the extractor
    can see; staging dedups), the lines that are not UTF-8 (a day with such a line is read line by line in Python:
    its other lines are staged, the undecodable ones returned for the dead-letter store))."""
    paths = [export.duck_path(f["name"]) for f in files]
    con.execute("DROP TABLE IF EXISTS ga4_lines")
    undecodable: List[UndecodableLine] = []
    try:
        con.execute(
            "CREATE TEMP TABLE ga4_lines AS SELECT filename AS file, line, "
            "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END AS ok "
            "FROM read_csv($paths, columns={'line': 'VARCHAR'}, header=false, delim=E'\\x01', quote='', "
            "escape='', auto_detect=false, max_line_size=$maxline, filename=true, strict_mode=false) "
            "WHERE line IS NOT NULL AND trim(line) <> ''",
            {"paths": paths, "maxline": MAX_LINE_BYTES})
    except duckdb.Error as exc:
        if "unicode" not in str(exc).lower():
            raise Ga4ReadError(f"ga4: reading export files {[os.path.basename(p) for p in paths]} failed: "
                               f"{safe_duck_error(exc)}") from None
        undecodable = _stage_decoded_lines(con, export, files)
    bad = con.execute("SELECT file, line FROM ga4_lines WHERE NOT ok ORDER BY rowid").fetchall()
    good, distinct = con.execute("SELECT count(*), count(DISTINCT line) FROM ga4_lines WHERE ok").fetchall()[0]
    return int(good), bad, int(good) - int(distinct), undecodable


def _stage_decoded_lines(con: duckdb.DuckDBPyConnection, export: ExportDir, files: List[Dict[str, Any]]
                         ) -> List[UndecodableLine]:
    """``ga4_lines`` built in Python for a day whose bytes are not all UTF-8 (DuckDB's CSV reader rejects the whole
    file): each line is decoded on its own, the undecodable ones are returned instead of staged."""
    names, texts, undecodable = [], [], []
    for f in files:
        path = export.duck_path(f["name"])
        data = export.read_bytes(f["name"])
        try:
            lines = data.decode("utf-8").split("\n")
            whole = True
        except UnicodeDecodeError:
            lines, whole = data.split(b"\n"), False
        for n, raw in enumerate(lines, start=1):
            if not whole:
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError:
                    undecodable.append((path, n, raw.rstrip(b"\r")))
                    continue
            text = raw[:-1] if raw.endswith("\r") else raw
            if text.strip():
                names.append(path)
                texts.append(text)
    staged = pa.table({"file": pa.array(names, pa.string()), "line": pa.array(texts, pa.string()),
                       "seq": pa.array(np.arange(len(texts), dtype=np.int64))})
    con.register("__ga4_decoded", staged)
    try:
        con.execute(
            "CREATE TEMP TABLE ga4_lines AS SELECT file, line, "
            "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END AS ok "
            "FROM __ga4_decoded ORDER BY seq")
    finally:
        con.unregister("__ga4_decoded")
    return undecodable


def _known_names(schema: Any, out: Optional[set] = None) -> set:
    out = set() if out is None else out
    if isinstance(schema, list):
        for item in schema:
            _known_names(item, out)
    elif isinstance(schema, dict):
        for key, sub in schema.items():
            out.add(key)
            _known_names(sub, out)
    return out


KNOWN_NAMES = _known_names(GA4_SCHEMA)
KEY_RE = r'"([^"\\]+)"\s*:'


def unknown_key_names(con: duckdb.DuckDBPyConnection) -> List[str]:
    """Key names (any depth, lists included) used by the staged day that the schema does not know. One cheap
    regex pass; a string value that merely looks like a key can only cause extra work, never data loss."""
    names = con.execute(
        "SELECT list_distinct(flatten(list(list_distinct(regexp_extract_all(line, $re, 1))))) "
        "FROM ga4_lines WHERE ok", {"re": KEY_RE}).fetchall()[0][0] or []
    return sorted(set(names) - KNOWN_NAMES)


def extras_select(unknown: List[str], force: bool = False) -> str:
    """``_extra_json``: NULL for rows without unknown keys; otherwise the unknown keys (objects recursed), or the
    whole line when they sit where they cannot be isolated (inside a list element) - never silently dropped.
    ``force``: the fast path counted more keys than the schema typed although no unknown *name* occurs (a known
    name at the wrong depth, an object where a scalar belongs): compute the depth-aware extras for every row."""
    if force and not unknown:
        return EXTRAS_SQL
    if not unknown:
        return "CAST(NULL AS VARCHAR)"
    names = json.dumps(unknown).replace("'", "''")
    rest = EXTRAS_SQL if force else "NULL"
    return (f"CASE WHEN list_has_any(regexp_extract_all(line, $re, 1), CAST('{names}' AS VARCHAR[])) "
            f"THEN COALESCE({EXTRAS_SQL}, line) ELSE {rest} END")


def _double_leaves(schema: Dict[str, Any], path: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    """Paths of the DOUBLE leaves of the schema ('[]' marks a list), the only type json_transform can lose a value
    to (VARCHAR takes any JSON value as text)."""
    out: List[Tuple[str, ...]] = []
    for key, sub in schema.items():
        if isinstance(sub, dict):
            out += _double_leaves(sub, path + (key,))
        elif isinstance(sub, list):
            out += _double_leaves(sub[0], path + (key, "[]"))
        elif sub == "DOUBLE":
            out.append(path + (key,))
    return out


def _typed_leaf(segs: Tuple[str, ...], base: str, depth: int = 0) -> str:
    """SQL of a leaf of the typed struct ``base``: a value, or the list of its values when under a list."""
    if "[]" not in segs:
        return base + "".join(f'."{s}"' for s in segs)
    i = segs.index("[]")
    head, var = base + "".join(f'."{s}"' for s in segs[:i]), f"x{depth}"
    inner = _typed_leaf(segs[i + 1:], var, depth + 1)
    mapped = f"list_transform({head}, lambda {var}: {inner})"
    return f"flatten({mapped})" if "[]" in segs[i + 1:] else mapped


def _type_errors_sql(schema: Dict[str, Any]) -> str:
    """SQL over (line, t = json_transform(line)): the top-level fields, comma-separated, in which a DOUBLE value
    present in the text did not survive json_transform (it gives NULL for '1,5', 'abc', an object) or is a JSON
    boolean (json_transform reads true as 1.0: no number either), else NULL."""
    by_key: Dict[str, List[str]] = {}
    for segs in _double_leaves(schema):
        jpath = "$" + "".join("[*]" if s == "[]" else f".{s}" for s in segs)
        typed = _typed_leaf(segs, "t")
        if "[]" in segs:
            cond = (f"(len(list_filter(json_extract(line, '{jpath}'), lambda j: json_type(j) <> 'NULL')) > "
                    f"len(list_filter(coalesce({typed}, []), lambda v: v IS NOT NULL)) "
                    f"OR len(list_filter(json_extract(line, '{jpath}'), lambda j: json_type(j) = 'BOOLEAN')) > 0)")
        else:
            cond = (f"(json_type(json_extract(line, '{jpath}')) <> 'NULL' AND ({typed} IS NULL "
                    f"OR json_type(json_extract(line, '{jpath}')) = 'BOOLEAN'))")
        by_key.setdefault(segs[0], []).append(f"coalesce({cond}, false)")
    parts = [f"CASE WHEN {' OR '.join(conds)} THEN '{key}' END" for key, conds in by_key.items()]
    return f"nullif(concat_ws(',', {', '.join(parts)}), '')"


TYPE_ERRORS_SQL = _type_errors_sql(GA4_SCHEMA)
TYPE_ERROR_FIELDS = "_type_error_fields"    # "event_params,ecommerce": fields of the row with a value that did not type
TYPE_ERROR_VALUES = "_type_error_values"    # {"ecommerce": {...}}: those fields as delivered (JSON)


def slow_day_table(con: duckdb.DuckDBPyConnection, day: date, force_extras: bool = False, intraday: bool = False
                   ) -> Tuple[pa.Table, List[str]]:
    """The line path's typed table of the day staged in ``ga4_lines`` (good lines only, file order):
    ``json_transform`` with the explicit schema + ``_extra_json``; same columns and types as the fast path.
    json_transform turns a number it cannot read ('1,5', 'abc') into NULL: such a row is landed with the top-level
    fields concerned in ``_type_error_fields`` and their JSON as delivered in ``_type_error_values`` (columns present
    only in a day that has such a row; staging quarantines the event, 'unparsable_value: <fields>')."""
    unknown = unknown_key_names(con)
    params: Dict[str, Any] = {"schema": SCHEMA_JSON}
    if unknown:
        params["re"] = KEY_RE
    table = con.sql(
        f"WITH typed AS (SELECT rowid AS rid, line, json_transform(line, $schema) AS t, "
        f"{extras_select(unknown, force_extras)} AS __extra FROM ga4_lines WHERE ok), "
        f"checked AS (SELECT *, {TYPE_ERRORS_SQL} AS __type_errors FROM typed) "
        f"SELECT unnest(t), __extra, __type_errors, CASE WHEN __type_errors IS NOT NULL THEN line END AS __line "
        f"FROM checked ORDER BY rid", params=params).to_arrow_table()
    extra = table.column("__extra")
    names = table.column("__type_errors")
    type_errors = None
    if names.null_count < len(names):
        values = []
        for fields, line in zip(names.to_pylist(), table.column("__line").to_pylist()):
            doc = json.loads(line) if fields else None
            values.append(json.dumps({f: doc.get(f) for f in fields.split(",")}, ensure_ascii=False)
                          if fields else None)
        type_errors = (names, pa.array(values, pa.string()))
    events = table.drop_columns(["__extra", "__type_errors", "__line"])
    return finish_table(events, day, extra, type_errors, intraday=intraday), unknown


def write_day(con: duckdb.DuckDBPyConnection, day: date, path: str, load_id: str, extracted_at: datetime,
              force_extras: bool = False, intraday: bool = False) -> List[str]:
    """Write the staged day (line path) to one Parquet file; returns the unknown field names."""
    table, unknown = slow_day_table(con, day, force_extras, intraday)
    write_day_table(table, path, load_id, extracted_at)
    return unknown


def locate_lines(export: ExportDir, file: str, bad_lines: List[str]) -> Dict[str, List[int]]:
    """1-based line numbers of the given line texts in ``file`` (only called when a day has bad lines)."""
    wanted = set(bad_lines)
    found: Dict[str, List[int]] = {}
    name = file if export.local else file.split("://", 1)[-1]
    with export.open_text(name) as fh:
        for n, text in enumerate(fh, start=1):
            text = text.rstrip("\r\n")
            if text in wanted:
                found.setdefault(text, []).append(n)
    return found


# ------------------------------------------------------------------------------------------------ Arrow output
def _arrow_type(t: Any) -> pa.DataType:
    if isinstance(t, dict):
        return pa.struct([pa.field(k, _arrow_type(v)) for k, v in t.items()])
    if isinstance(t, list):
        return pa.list_(_arrow_type(t[0]))
    return {"VARCHAR": pa.string(), "DOUBLE": pa.float64()}[t]


EVENT_SCHEMA = pa.schema([pa.field(k, _arrow_type(v)) for k, v in GA4_SCHEMA.items()])
EXTRA_FIELDS = [pa.field("_export_date", pa.date32()), pa.field("_extra_json", pa.string()),
                pa.field("_export_table", pa.string())]   # events_YYYYMMDD | events_intraday_YYYYMMDD
META_FIELDS = [pa.field("_load_id", pa.string()), pa.field("_extracted_at", pa.timestamp("us", tz="UTC")),
               pa.field("_record_seq", pa.int64())]
#: every day's Parquet has exactly this schema, whichever path read it
OUTPUT_SCHEMA = pa.schema(list(EVENT_SCHEMA) + EXTRA_FIELDS + META_FIELDS)


def finish_table(events: pa.Table, day: date, extra_json: Optional[pa.Array] = None,
                 type_errors: Optional[Tuple[Any, Any]] = None, intraday: bool = False) -> pa.Table:
    """Typed event columns (cast to the one schema) + ``_export_date`` + ``_extra_json`` (+ ``_type_error_fields``,
    ``_type_error_values`` when the line path found a value it could not type)."""
    n = events.num_rows
    cols = []
    for f in EVENT_SCHEMA:
        col = events.column(f.name)
        cols.append(col if col.type == f.type else col.cast(f.type))
    cols.append(pa.repeat(pa.scalar(day, pa.date32()), n))
    cols.append(extra_json.cast(pa.string()) if extra_json is not None else pa.nulls(n, pa.string()))
    cols.append(pa.repeat(pa.scalar(export_table(day, intraday), pa.string()), n))
    fields = list(EVENT_SCHEMA) + EXTRA_FIELDS
    if type_errors is not None:
        cols += [type_errors[0].cast(pa.string()), type_errors[1].cast(pa.string())]
        fields += [pa.field(TYPE_ERROR_FIELDS, pa.string()), pa.field(TYPE_ERROR_VALUES, pa.string())]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def write_day_table(table: pa.Table, path: str, load_id: str, extracted_at: datetime) -> int:
    """Add the metadata columns and write one zstd Parquet file (pyarrow releases the GIL: callable from threads)."""
    import pyarrow.parquet as pq
    n = table.num_rows
    full = pa.Table.from_arrays(
        list(table.columns) + [pa.repeat(pa.scalar(load_id, pa.string()), n),
                               pa.repeat(pa.scalar(extracted_at, pa.timestamp("us", tz="UTC")), n),
                               pa.array(np.arange(n, dtype=np.int64))],
        schema=pa.schema(list(table.schema) + META_FIELDS))   # OUTPUT_SCHEMA (+ the type error columns)
    pq.write_table(full, path, compression="zstd")
    return n


# ------------------------------------------------------------------------------------------------ fast path
class ByteScan:
    """What one cheap vectorised pass over a day's bytes tells (no JSON parsing): the line count and how many
    object keys the text holds. In JSON a closing quote directly followed by ``:`` always ends a key (inside a
    string a quote is escaped, ``\\"``); explicit ``null`` values are counted separately because the typed read
    cannot tell them from absent keys."""

    def __init__(self, chunks: List[bytes]) -> None:
        self.lines = 0
        self.keys = 0
        self.null_keys = 0
        self.bool_values = 0
        self.odd_spacing = False
        for data in chunks:
            self.lines += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
            a = np.frombuffer(data, np.uint8)
            if len(a) < 2:
                continue
            idx = np.flatnonzero(a[1:] == 58)                       # every ':' ...
            idx = idx[a[idx] == 34]                                  # ... right after a '"': '":'
            idx = idx[idx > 0]
            self.keys += len(idx) - int(np.count_nonzero(a[idx - 1] == 92))   # minus '\\":' inside strings
            j = idx[idx + 6 < len(a)]
            k = np.where(a[j + 2] == 32, j + 3, j + 2)                # '":null' or '": null'
            k = k[k + 3 < len(a)]
            self.null_keys += int(np.count_nonzero((a[k] == 110) & (a[k + 1] == 117) & (a[k + 2] == 108)
                                                   & (a[k + 3] == 108)))
            # 'true' / 'fals(e)': the schema has no BOOLEAN field, and the typed read turns one in a DOUBLE field
            # into 1.0 / 0.0 without a trace; such a day goes to the line path, which names it (TYPE_ERRORS_SQL)
            self.bool_values += int(np.count_nonzero(((a[k] == 116) & (a[k + 1] == 114) & (a[k + 2] == 117)
                                                      & (a[k + 3] == 101))
                                                     | ((a[k] == 102) & (a[k + 1] == 97) & (a[k + 2] == 108)
                                                        & (a[k + 3] == 115))))
            # whitespace *before* a colon would hide keys from the count; a writer uses one style, so the start of
            # the file tells (other odd spacing only makes the counts differ: the line path, never a loss)
            head = data[:65536]
            self.odd_spacing = self.odd_spacing or b'" :' in head or b'"\t:' in head


def _present(arr: pa.Array) -> int:
    """Keys a column accounts for: non-null values of this field plus, recursively, the fields under it."""
    n = len(arr) - arr.null_count
    t = arr.type
    if pa.types.is_struct(t):
        return n + sum(_present(child) for child in arr.flatten())
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        values = arr.flatten()
        if pa.types.is_struct(values.type):
            return n + sum(_present(child) for child in values.flatten())
    return n


def present_keys(events: pa.Table) -> int:
    """Non-null keys of the typed rows at every depth (list elements are not keys, their fields are)."""
    return sum(_present(chunk) for col in events.columns for chunk in col.chunks)


HASH_COLUMNS = ", ".join(f'"{c}"' for c in READ_COLUMNS)


def fast_read_days(con: duckdb.DuckDBPyConnection, export: ExportDir,
                   batch: List[Tuple[date, List[Dict[str, Any]]]]) -> Dict[date, Tuple[pa.Table, int]]:
    """Read several days with ONE typed ``read_json(columns=…)`` scan (DuckDB parallelises across files).

    Returns ``{day: (typed events, duplicates)}`` for the days the fast path can prove complete: DuckDB read every
    line (a blank line also sends the day to the line path), and the keys it typed (non-null values + explicit nulls) equal the keys in the text — so no
    unknown field (at any depth, including inside list elements, or a known name at the wrong depth) and no value
    of an unexpected shape was dropped. Days missing from the result need the line path (``stage_day_full`` +
    ``write_day``), which dead-letters bad lines and keeps unknown fields in ``_extra_json``.
    A batch that fails to parse (a bad line somewhere) is retried day by day."""
    scans = {day: ByteScan([export.read_bytes(f["name"]) for f in files]) for day, files in batch}
    ok_days = list(batch)
    try:
        table = con.sql(
            f"SELECT * EXCLUDE (filename), filename AS __file, hash({HASH_COLUMNS}) AS __hash "
            "FROM read_json($paths, columns=$cols, format='newline_delimited', "
            "filename=true, maximum_object_size=$maxobj)",
            params={"paths": [export.duck_path(f["name"]) for _d, fs in ok_days for f in fs],
                    "cols": READ_COLUMNS, "maxobj": MAX_LINE_BYTES}).to_arrow_table()
    except duckdb.Error:
        if len(ok_days) == 1:
            return {}
        out: Dict[date, Tuple[pa.Table, int]] = {}
        for item in ok_days:
            out.update(fast_read_days(con, export, [item]))
        return out
    files_col = table.column("__file")
    hashes = table.column("__hash")
    events = table.drop_columns(["__file", "__hash"])
    out = {}
    counts = {}
    if events.num_rows:
        vc = pc.value_counts(files_col)
        counts = dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
    offset = 0
    for day, files in ok_days:
        scan = scans[day]
        names = [export.duck_path(f["name"]) for f in files]
        n = sum(counts.get(name, 0) for name in names)
        part = events.slice(offset, n)
        got = files_col.slice(offset, n)
        start, offset = offset, offset + n
        if scan.odd_spacing:
            continue
        if n != scan.lines or (n and set(got.unique().to_pylist()) != {nm for nm in names if counts.get(nm)}):
            continue  # row accounting does not add up (blank line, odd line ends): let the line path decide
        if present_keys(part) + scan.null_keys != scan.keys:
            continue  # unknown / mis-shaped fields somewhere in the day
        if scan.bool_values:
            continue  # a JSON true / false: the typed read would make it 1.0 / 0.0 in a DOUBLE field
        dups = n - pc.count_distinct(hashes.slice(start, n)).as_py() if n else 0
        out[day] = (part, dups)
    if offset != events.num_rows:
        return {}  # rows we cannot attribute to a day: trust nothing of this batch
    return out
