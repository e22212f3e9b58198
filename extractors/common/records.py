"""JSON records -> flat Arrow tables for the HTTP sources (contract section 4).

Objects are flattened with ``__`` (``reviewer.displayName`` -> ``reviewer__displayName``); lists, and objects
deeper than ``max_depth``, become JSON text. Values keep the vendor's JSON type where a column is
consistently typed (bool / int / float / string); a column with mixed types (e.g. a rating that is sometimes
``5`` and sometimes ``"five"``) is landed as text so nothing is lost or cast.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

import pyarrow as pa


def to_json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def flatten(record: Dict[str, Any], *, max_depth: int = 3, json_keys: Sequence[str] = (),
            drop_keys: Sequence[str] = ()) -> Dict[str, Any]:
    out: Dict[str, Any] = {}

    def walk(obj: Dict[str, Any], prefix: str, depth: int) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if name in drop_keys:
                continue
            if name in json_keys:
                out[name] = None if value is None else to_json_text(value)
            elif isinstance(value, dict):
                if depth < max_depth and value:
                    walk(value, name + "__", depth + 1)
                else:
                    out[name] = to_json_text(value)
            elif isinstance(value, list):
                out[name] = to_json_text(value)
            else:
                out[name] = value

    walk(record, "", 1)
    return out


def _column_type(values: List[Any]) -> pa.DataType:
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        else:
            kinds.add("str")
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _as_text(v: Any) -> Optional[str]:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return to_json_text(v)


def rows_to_table(rows: List[Dict[str, Any]], columns: Sequence[str] = (),
                  string_columns: Sequence[str] = ()) -> pa.Table:
    """Build a table; ``columns`` come first in that order (and always exist, typed string when all null),
    any other keys follow sorted by name. ``string_columns`` are always text."""
    names = list(dict.fromkeys(columns))
    extra = sorted({k for r in rows for k in r.keys()} - set(names))
    names.extend(extra)
    forced = set(string_columns)
    arrays = []
    fields = []
    for name in names:
        values = [r.get(name) for r in rows]
        dtype = pa.string() if name in forced else _column_type(values)
        if pa.types.is_string(dtype):
            values = [_as_text(v) for v in values]
        elif pa.types.is_int64(dtype):
            big = any(v is not None and not (-2**63 <= v < 2**63) for v in values)
            if big:
                dtype = pa.string()
                values = [_as_text(v) for v in values]
        arrays.append(pa.array(values, dtype))
        fields.append(pa.field(name, dtype))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if fields else pa.table({})
