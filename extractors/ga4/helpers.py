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
import pyarrow as pa

from .settings import FILE_PREFIX, FILE_SUFFIXES, MAX_LINE_BYTES, SCHEMA_JSON

DAY_RE = re.compile(r"^events_(\d{8})(?:\.(?:json|ndjson|jsonl)(?:\.gz)?)?$")


class ExportDir:
    """A local directory or fsspec URL holding ``events_YYYYMMDD.json[.gz]`` files / ``events_YYYYMMDD/`` dirs."""

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = protocol in ("file", "local")
        self.protocol = protocol

    def days(self) -> Dict[date, List[Dict[str, Any]]]:
        """{day: [file info dicts]} for every export day found (folders expanded to their data files)."""
        out: Dict[date, List[Dict[str, Any]]] = {}
        for info in self.fs.ls(self.root, detail=True):
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            m = DAY_RE.match(name)
            if not m:
                continue
            day = datetime.strptime(m.group(1), "%Y%m%d").date()
            if info.get("type") == "directory":
                files = [f for f in self.fs.find(info["name"], detail=True).values()
                         if f["name"].endswith(FILE_SUFFIXES)]
            elif name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIXES):
                files = [info]
            else:
                continue
            out.setdefault(day, []).extend(sorted(files, key=lambda f: f["name"]))
        return out

    def fingerprint(self, files: List[Dict[str, Any]]) -> str:
        """size + mtime + etag/md5 (whatever the filesystem reports) of every file of a day."""
        parts = []
        for f in files:
            mtime = f.get("mtime") or f.get("LastModified") or f.get("updated") or f.get("created")
            if self.local:
                st = os.stat(f["name"])
                mtime = st.st_mtime_ns
            etag = f.get("ETag") or f.get("etag") or f.get("md5Hash") or f.get("md5")
            parts.append(f"{f['name'].rsplit('/', 1)[-1]}|{f.get('size')}|{mtime}|{etag}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def duck_path(self, name: str) -> str:
        return name if self.local else f"{self.protocol}://{name}"

    def open_text(self, name: str):
        fh = self.fs.open(name, "rb")
        if name.endswith(".gz"):
            return gzip.open(fh, "rt", encoding="utf-8", errors="replace")
        return open(name, "r", encoding="utf-8", errors="replace") if self.local else \
            __import__("io").TextIOWrapper(fh, encoding="utf-8", errors="replace")


def connect(export: ExportDir) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()  # in-memory: never the warehouse file
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


from .settings import GA4_SCHEMA  # noqa: E402

EXTRAS_SQL = f"NULLIF(CAST({_extras_sql('CAST(line AS JSON)', GA4_SCHEMA)} AS VARCHAR), '{{}}')"


def stage_day(con: duckdb.DuckDBPyConnection, export: ExportDir, files: List[Dict[str, Any]]
              ) -> Tuple[int, List[Tuple[str, str]]]:
    """Read a day's lines into the temp table ``ga4_lines``; returns (good rows, [(file, bad line)])."""
    good, bad, _dups = stage_day_stats(con, export, files)
    return good, bad


def stage_day_stats(con: duckdb.DuckDBPyConnection, export: ExportDir, files: List[Dict[str, Any]]
                    ) -> Tuple[int, List[Tuple[str, str]], int]:
    """Like :func:`stage_day`, plus the number of byte-identical duplicate event lines (GA4 has no event id:
    an exact repeat is the only duplicate the extractor can see; staging dedups)."""
    paths = [export.duck_path(f["name"]) for f in files]
    con.execute("DROP TABLE IF EXISTS ga4_lines")
    con.execute(
        "CREATE TEMP TABLE ga4_lines AS SELECT filename AS file, line, "
        "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END AS ok "
        "FROM read_csv($paths, columns={'line': 'VARCHAR'}, header=false, delim=E'\\x01', quote='', "
        "escape='', auto_detect=false, max_line_size=$maxline, filename=true, strict_mode=false) "
        "WHERE line IS NOT NULL AND trim(line) <> ''",
        {"paths": paths, "maxline": MAX_LINE_BYTES})
    bad = con.execute("SELECT file, line FROM ga4_lines WHERE NOT ok ORDER BY rowid").fetchall()
    good, distinct = con.execute("SELECT count(*), count(DISTINCT line) FROM ga4_lines WHERE ok").fetchall()[0]
    return int(good), bad, int(good) - int(distinct)


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


def extras_select(unknown: List[str]) -> str:
    """``_extra_json``: NULL for rows without unknown keys; otherwise the unknown keys (objects recursed), or the
    whole line when they sit where they cannot be isolated (inside a list element) - never silently dropped."""
    if not unknown:
        return "CAST(NULL AS VARCHAR)"
    names = json.dumps(unknown).replace("'", "''")
    return (f"CASE WHEN list_has_any(regexp_extract_all(line, $re, 1), CAST('{names}' AS VARCHAR[])) "
            f"THEN COALESCE({EXTRAS_SQL}, line) END")


DAY_SELECT = (
    "SELECT unnest(json_transform(line, $schema)), CAST($day AS DATE) AS _export_date, "
    "{extras} AS _extra_json, "
    "$load_id AS _load_id, CAST($extracted_at AS TIMESTAMPTZ) AS _extracted_at, "
    "CAST(row_number() OVER (ORDER BY rowid) - 1 AS BIGINT) AS _record_seq "
    "FROM ga4_lines WHERE ok ORDER BY rowid")


def write_day(con: duckdb.DuckDBPyConnection, day: date, path: str, load_id: str, extracted_at: datetime
              ) -> List[str]:
    """COPY the staged day to one Parquet file (DuckDB writes it; rows never pass through Python)."""
    unknown = unknown_key_names(con)
    params = {"schema": SCHEMA_JSON, "day": day.isoformat(), "load_id": load_id,
              "extracted_at": extracted_at.isoformat()}
    if unknown:
        params["re"] = KEY_RE
    select = DAY_SELECT.format(extras=extras_select(unknown))
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)", params)
    return unknown


def read_day(con: duckdb.DuckDBPyConnection, export: ExportDir, files: List[Dict[str, Any]], day: date
             ) -> Tuple[pa.Table, List[Tuple[str, str]]]:
    """Typed Arrow table of a day (for the dlt resource): same columns as the landed Parquet minus metadata."""
    _good, bad = stage_day(con, export, files)
    unknown = unknown_key_names(con)
    params = {"schema": SCHEMA_JSON, "day": day.isoformat()}
    if unknown:
        params["re"] = KEY_RE
    table = con.sql(
        f"SELECT unnest(json_transform(line, $schema)), CAST($day AS DATE) AS _export_date, "
        f"{extras_select(unknown)} AS _extra_json FROM ga4_lines WHERE ok ORDER BY rowid",
        params=params).to_arrow_table()
    return table, bad


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
