"""Review files helpers: the per-site mapping, reading one export file into mapped rows (bad rows -> reasons)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from zoneinfo import ZoneInfo

import pyarrow as pa
import yaml

from extractors.common.settings import ConfigError, iso

from .settings import SOURCE

FORMATS = ("csv", "tsv", "jsonl")
FIELDS = ("review_id", "location", "rating", "text", "title", "created_at", "author", "language", "reply_text",
          "reply_at")
RESERVED_SITES = ("google", "trustpilot", "hubspot", "unknown")   # review_source / text_key values already used
REQUIRED = ("rating", "created_at")        # review_id: a column, or id_from (a hash of columns)
COLUMNS = ["site", "file_name", "file_sha256", "file_row", "review_id", "location", "rating", "rating_min",
           "rating_max", "created_at", "created_at_raw", "title", "text", "author", "language", "reply_text",
           "reply_at"]
STRING_COLUMNS = [c for c in COLUMNS if c not in ("file_row", "rating_min", "rating_max")]


@dataclass
class Mapping:
    """One site's export shape (extractors/review_files/mappings/<site>.yml, documented in the README there)."""
    site: str
    format: str
    columns: Dict[str, str]                  # field -> column (or JSON key) in the export
    rating_min: float
    rating_max: float
    created_at_format: Optional[str]         # strptime format; None: ISO-8601
    timezone: str = "UTC"
    id_from: List[str] = field(default_factory=list)
    constants: Dict[str, str] = field(default_factory=dict)    # field -> fixed value (e.g. the location)
    patterns: List[str] = field(default_factory=lambda: ["*"])
    encoding: str = "utf-8-sig"


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; a mistake raises ConfigError naming the file and the key."""
    where = f"review_files mapping {path.name}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot be read ({type(exc).__name__})", source=SOURCE,
                          setting="CXW_REVIEW_FILES_MAPPINGS_DIR") from None

    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}", source=SOURCE, setting="CXW_REVIEW_FILES_MAPPINGS_DIR")

    site = doc.get("site") or path.stem
    if site != path.stem:
        raise bad(f"site {site!r} differs from the file name")
    if site in RESERVED_SITES or not site.replace("_", "").isalnum() or site != site.lower():
        raise bad(f"site {site!r} must be lower-case letters, digits and _, and not one of {list(RESERVED_SITES)}")
    fmt = doc.get("format", "csv")
    if fmt not in FORMATS:
        raise bad(f"format must be one of {FORMATS}")
    cols = doc.get("columns") or {}
    consts = {k: str(v) for k, v in (doc.get("constants") or {}).items()}
    unknown = sorted((set(cols) | set(consts)) - set(FIELDS))
    if unknown:
        raise bad(f"unknown fields {unknown} (known: {list(FIELDS)})")
    missing = [f for f in REQUIRED if f not in cols]
    id_from = list(doc.get("id_from") or [])
    if "review_id" not in cols and not id_from:
        missing.append("review_id (or id_from)")
    if missing:
        raise bad(f"columns lacks {missing}")
    scale = doc.get("rating_scale") or {}
    try:
        lo, hi = float(scale.get("min", 1)), float(scale["max"])
    except (KeyError, TypeError, ValueError):
        raise bad("rating_scale needs a numeric max (and min, default 1)") from None
    if not lo < hi:
        raise bad("rating_scale min must be below max")
    tz = doc.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except Exception:
        raise bad(f"timezone {tz!r} is unknown") from None
    return Mapping(site=site, format=fmt, columns={k: str(v) for k, v in cols.items()}, rating_min=lo,
                   rating_max=hi, created_at_format=doc.get("created_at_format"), timezone=tz, id_from=id_from,
                   constants=consts, patterns=list(doc.get("files") or ["*"]),
                   encoding=doc.get("encoding", "utf-8-sig"))


def load_mappings(mappings_dir: Path) -> Dict[str, Mapping]:
    return {p.stem: load_mapping(p) for p in sorted(Path(mappings_dir).glob("*.yml"))}


def content_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _records(data: bytes, mapping: Mapping) -> Iterator[Tuple[int, Any, Optional[str]]]:
    """(row number, record dict or None, the raw line when it could not be read) per data row (1 = first row)."""
    text = data.decode(mapping.encoding)
    if mapping.format == "jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                yield n, None, line
                continue
            yield (n, rec, None) if isinstance(rec, dict) else (n, None, line)
        return
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if mapping.format == "tsv" else ",")
    for n, rec in enumerate(reader, start=1):
        if None in rec:      # more cells than header columns
            yield n, None, json.dumps(rec, default=str)
            continue
        yield n, rec, None


def _value(rec: Dict[str, Any], col: Optional[str]) -> Optional[str]:
    if col is None:
        return None
    v = rec.get(col)
    if v is None:
        return None
    v = v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
    v = v.strip()
    return v or None


def parse_time(value: str, mapping: Mapping) -> datetime:
    if mapping.created_at_format:
        dt = datetime.strptime(value, mapping.created_at_format)
    else:
        dt = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(mapping.timezone))
    return dt.astimezone(timezone.utc)


@dataclass
class BadRow:
    row_number: int
    field: str
    reason: str
    payload: Optional[str]


def read_file(data: bytes, file_name: str, sha: str, mapping: Mapping) -> Tuple[List[Dict[str, Any]], List[BadRow]]:
    """The mapped rows of one export file and its bad rows (reason names the field; never a value)."""
    rows: List[Dict[str, Any]] = []
    bad: List[BadRow] = []
    seen: Dict[str, int] = {}
    c = mapping.columns
    for n, rec, raw_line in _records(data, mapping):
        if rec is None:
            bad.append(BadRow(n, "(row)", "unreadable row (not a record of the file's format)", raw_line))
            continue
        payload = json.dumps(rec, default=str, ensure_ascii=False)
        missing_cols = [col for col in list(c.values()) + mapping.id_from if col not in rec]
        if mapping.format == "jsonl" and any(col in missing_cols for col in (c["rating"], c["created_at"])):
            f = "rating" if c["rating"] in missing_cols else "created_at"
            bad.append(BadRow(n, f, f"key {c[f]!r} missing", payload))
            continue
        if mapping.format != "jsonl" and missing_cols:
            raise ConfigError(f"review_files mapping {mapping.site}.yml: columns {sorted(set(missing_cols))} are "
                              f"not in {file_name}'s header", source=SOURCE, setting="CXW_REVIEW_FILES_MAPPINGS_DIR")
        vals = {f: mapping.constants.get(f) or _value(rec, c.get(f)) for f in FIELDS}
        if mapping.id_from:
            key = "\x1f".join(_value(rec, col) or "" for col in mapping.id_from)
            base = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
            seen[base] = seen.get(base, 0) + 1         # identical rows in one export stay distinct reviews
            vals["review_id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
        if not vals["review_id"]:
            bad.append(BadRow(n, "review_id", f"column {c.get('review_id')!r} is empty", payload))
            continue
        try:
            rating = float(vals["rating"]) if vals["rating"] is not None else None
        except ValueError:
            rating = None
        if rating is None or not mapping.rating_min <= rating <= mapping.rating_max:
            bad.append(BadRow(n, "rating", f"column {c['rating']!r} is not a number in "
                              f"[{mapping.rating_min:g}, {mapping.rating_max:g}]", payload))
            continue
        if vals["created_at"] is None:
            bad.append(BadRow(n, "created_at", f"column {c['created_at']!r} is empty", payload))
            continue
        try:
            created = parse_time(vals["created_at"], mapping)
        except ValueError:
            fmt = mapping.created_at_format or "ISO-8601"
            bad.append(BadRow(n, "created_at", f"column {c['created_at']!r} does not match {fmt}", payload))
            continue
        reply_at = None
        if vals["reply_at"]:
            try:
                reply_at = iso(parse_time(vals["reply_at"], mapping))
            except ValueError:
                bad.append(BadRow(n, "reply_at", f"column {c['reply_at']!r} does not match "
                                  f"{mapping.created_at_format or 'ISO-8601'}", payload))
                continue
        rows.append({**{f: vals[f] for f in ("review_id", "location", "title", "text", "author", "language",
                                             "reply_text")},
                     "site": mapping.site, "file_name": file_name, "file_sha256": sha, "file_row": n,
                     "rating": vals["rating"], "rating_min": mapping.rating_min, "rating_max": mapping.rating_max,
                     "created_at": iso(created), "created_at_raw": vals["created_at"], "reply_at": reply_at})
    return rows, bad


def reviews_table(rows: List[Dict[str, Any]]) -> pa.Table:
    schema = pa.schema([(c, pa.int64() if c == "file_row" else pa.float64() if c in ("rating_min", "rating_max")
                         else pa.string()) for c in COLUMNS])
    return pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=schema)
