"""Odoo mapping files (CXW_ODOO_MAPPING): parsing and validation into `EntityMapping`s, and the check of a mapping
against the raw contract (cxw/raw_contract.yml) that staging reads."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

import yaml

from extractors.common.settings import ConfigError

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
# SQL expressions in a mapping are trusted configuration, but still limited to a harmless character set:
# no statement separators, comments or string concatenation tricks.
EXPR_RE = re.compile(r"^[A-Za-z0-9_ .,()'*+\-/:<>=|]+$")
LOOKBACK_RE = re.compile(r"^(\d+)\s*([dhm])$")
IDS_SUFFIX = "__ids"
TYPES = {"int", "float", "bool", "string", "json", "timestamp", "date"}


class MappingError(ConfigError):
    """The mapping file (CXW_ODOO_MAPPING) is missing a key, has an unknown one, or does not give staging what it
    reads: a configuration error (never retried; the run summary names CXW_ODOO_MAPPING and the fix)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, source="odoo", setting="CXW_ODOO_MAPPING",
                         fix="correct the mapping file named by CXW_ODOO_MAPPING (extractors/odoo/README.md, "
                             "'What a mapping must provide')")


# the keys a mapping may have (an unknown key is a typo: it would be ignored silently otherwise)
TOP_KEYS = {"version", "defaults", "entities"}
DEFAULT_KEYS = {"cursor", "tie_breaker", "lookback", "id_snapshot"}
ENTITY_KEYS = {"table", "columns", "cursor", "tie_breaker", "lookback", "id_snapshot", "id_column"}
COLUMN_KEYS = {"name", "type", "expr", "source", "required", "values", "divide_by"}


@dataclass
class Column:
    name: str
    type: str = "string"
    expr: Optional[str] = None
    # a mapped column the source table no longer has fails the entity's load when required (the default); an
    # optional one (``required: false``) lands as NULL and is reported as schema drift
    required: bool = True
    # the source table's column when it is named otherwise than the landed column ``name`` (default: ``name``)
    source: Optional[str] = None
    # source value -> landed value (strings; e.g. a webshop's order status -> the Odoo state staging knows); a value
    # not in the map lands as delivered
    values: Optional[Dict[str, str]] = None
    # the landed number is the source's divided by this (e.g. 100: amounts kept in cents land in currency units)
    divide_by: Optional[float] = None

    @property
    def src(self) -> str:
        return self.source or self.name


@dataclass
class EntityMapping:
    entity: str
    table: str
    columns: List[Column]
    cursor: Optional[str]
    tie_breaker: str
    lookback: timedelta
    id_column: str = "id"
    # hard-delete reconciliation: land ``<entity>__ids`` (every id present now) at most once per this interval
    # (timedelta(0) = every incremental run; None = never)
    id_snapshot: Optional[timedelta] = None


def _ident(value: Any, what: str, regex=IDENT_RE) -> str:
    if not isinstance(value, str) or not regex.match(value):
        raise MappingError(f"odoo mapping: {what} {value!r} is not an allowed identifier")
    return value


def parse_lookback(value: Any) -> timedelta:
    m = LOOKBACK_RE.match(str(value).strip())
    if not m:
        raise MappingError(f"odoo mapping: lookback {value!r} must look like 2d, 12h or 30m")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def parse_id_snapshot(value: Any, entity: str) -> Optional[timedelta]:
    if value in (None, False, "", "never", "off"):
        return None
    if value is True or value in ("always", "every_run"):
        return timedelta(0)
    try:
        return parse_lookback(value)
    except MappingError:
        raise MappingError(f"odoo mapping: {entity}.id_snapshot {value!r} must be true/false or an interval "
                           "like 1d, 12h, 30m") from None


def _unknown(keys: Any, allowed: set, where: str) -> None:
    extra = sorted(str(k) for k in keys if k not in allowed)
    if extra:
        raise MappingError(f"odoo mapping: {where} has unknown key(s) {', '.join(extra)} (allowed: "
                           f"{', '.join(sorted(allowed))})")


def _column(entity: str, i: int, c: Any) -> Column:
    if isinstance(c, str):
        c = {"name": c}
    if not isinstance(c, dict):
        raise MappingError(f"odoo mapping: {entity} column {c!r} must be a name or a mapping")
    if "name" not in c:
        raise MappingError(f"odoo mapping: column #{i + 1} of entity {entity} has no 'name' key (the column it "
                           "lands as)")
    name = _ident(c.get("name"), f"{entity} column")
    _unknown(c, COLUMN_KEYS, f"{entity}.{name}")
    typ = c.get("type", "string")
    if typ not in TYPES:
        raise MappingError(f"odoo mapping: {entity}.{name} type {typ!r} not in {sorted(TYPES)}")
    expr = c.get("expr")
    if expr is not None and (not isinstance(expr, str) or not EXPR_RE.match(expr) or "--" in expr):
        raise MappingError(f"odoo mapping: {entity}.{name} expression contains disallowed characters")
    source = c.get("source")
    if source is not None:
        source = _ident(source, f"{entity}.{name} source")
        if expr is not None:
            raise MappingError(f"odoo mapping: {entity}.{name} has both 'source' and 'expr': use one")
    required = c.get("required", True)
    if not isinstance(required, bool):
        raise MappingError(f"odoo mapping: {entity}.{name} required must be true or false")
    values = c.get("values")
    if values is not None:
        if typ != "string" or not isinstance(values, dict) or not values or any(
                isinstance(v, (dict, list)) or v is None or isinstance(k, (dict, list)) or k is None
                for k, v in values.items()):
            raise MappingError(f"odoo mapping: {entity}.{name} values must map source values to landed values "
                               "(scalars, a column of type string)")
        values = {str(k): str(v) for k, v in values.items()}
    divide_by = c.get("divide_by")
    if divide_by is not None:
        if typ != "float" or isinstance(divide_by, bool) or not isinstance(divide_by, (int, float)) \
                or not divide_by > 0:
            raise MappingError(f"odoo mapping: {entity}.{name} divide_by must be a positive number (a column of "
                               "type float)")
        divide_by = float(divide_by)
    return Column(name, typ, expr, required, source, values, divide_by)


def load_mapping(path: str) -> Dict[str, EntityMapping]:
    """The mapping file as entity mappings. Every missing, unknown or malformed key is a :class:`MappingError`
    naming it (a configuration error: the run fails at once, without retries)."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise MappingError(f"odoo mapping {path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MappingError(f"odoo mapping {path}: not valid YAML{where}") from None
    if not isinstance(doc, dict) or "entities" not in doc:
        raise MappingError(f"odoo mapping {path}: has no 'entities' key (entity name -> table and columns)")
    if not isinstance(doc["entities"], dict) or not doc["entities"]:
        raise MappingError(f"odoo mapping {path}: 'entities' must map entity names to their table and columns")
    _unknown(doc, TOP_KEYS, f"{path} (top level)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise MappingError(f"odoo mapping {path}: 'defaults' must be a mapping")
    _unknown(defaults, DEFAULT_KEYS, "defaults")
    out: Dict[str, EntityMapping] = {}
    for entity, spec in doc["entities"].items():
        _ident(entity, "entity name")
        if not isinstance(spec, dict):
            raise MappingError(f"odoo mapping: entity {entity} must be a mapping")
        _unknown(spec, ENTITY_KEYS, f"entity {entity}")
        if "columns" not in spec:
            raise MappingError(f"odoo mapping: entity {entity} has no 'columns' key (the columns it lands)")
        table = _ident(spec.get("table", entity), f"{entity}.table", TABLE_RE)
        if not isinstance(spec["columns"], list):
            raise MappingError(f"odoo mapping: {entity}.columns must be a list")
        cols = [_column(entity, i, c) for i, c in enumerate(spec["columns"])]
        if not cols:
            raise MappingError(f"odoo mapping: {entity} has no columns")
        seen = set()
        for c in cols:
            if c.name in seen:
                raise MappingError(f"odoo mapping: {entity} lands column {c.name} twice")
            seen.add(c.name)
        cursor = spec.get("cursor", defaults.get("cursor"))
        cursor = None if cursor in (None, "", False) else _ident(cursor, f"{entity}.cursor")
        tie = _ident(spec.get("tie_breaker", defaults.get("tie_breaker", "id")), f"{entity}.tie_breaker")
        lookback = parse_lookback(spec.get("lookback", defaults.get("lookback", "2d")))
        id_col = _ident(spec.get("id_column", "id"), f"{entity}.id_column")
        snap = parse_id_snapshot(spec.get("id_snapshot", defaults.get("id_snapshot") if cursor else None), entity)
        if snap is not None and id_col not in {c.name for c in cols}:
            raise MappingError(f"odoo mapping: {entity}.id_snapshot needs its id column {id_col!r} among the columns")
        if entity.endswith(IDS_SUFFIX):
            raise MappingError(f"odoo mapping: entity names may not end in {IDS_SUFFIX!r} (reserved for id snapshots)")
        out[entity] = EntityMapping(entity, table, cols, cursor, tie, lookback, id_col, snap)
    return out


#: mapping type -> the DuckDB type of the landed column (cxw/raw_contract.yml speaks DuckDB types)
CONTRACT_TYPES = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR", "json": "VARCHAR",
                  "timestamp": "TIMESTAMP", "date": "DATE"}
#: the raw contract (every raw table staging reads, with its columns): a repository file shared with cxw.loader
CONTRACT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cxw", "raw_contract.yml")


def contract_problems(mapping: Dict[str, EntityMapping], contract: Dict[str, Dict[str, str]]) -> Tuple[List[str], List[str]]:
    """(errors, notes) of a mapping against the raw contract's ``odoo`` tables (``{entity: {column: type}}``).

    Errors: an entity that staging reads but that lacks a column staging reads, or lands it with another type.
    Notes: contract entities the mapping leaves out (the loader then declares them empty: their staging models and
    the marts built on them are empty), and mapped entities staging does not read (landed, never used)."""
    errors: List[str] = []
    wanted = {e: cols for e, cols in contract.items() if not e.endswith(IDS_SUFFIX)}
    for entity, cols in sorted(wanted.items()):
        m = mapping.get(entity)
        if m is None:
            continue
        have = {c.name: c for c in m.columns}
        missing = [c for c in sorted(cols) if c not in have]
        if missing:
            errors.append(f"entity {entity} has no column {', '.join(missing)} (staging reads "
                          f"{'it' if len(missing) == 1 else 'them'}: add {'it' if len(missing) == 1 else 'them'} "
                          "with 'source' for a renamed column, or 'expr' for a constant)")
        for name, want in sorted(cols.items()):
            c = have.get(name)
            if c is not None and CONTRACT_TYPES[c.type] != want.upper():
                errors.append(f"{entity}.{name} is mapped as type {c.type}, staging reads {want} "
                              f"(type {', '.join(t for t, d in sorted(CONTRACT_TYPES.items()) if d == want.upper())})")
    notes = [f"entity {e} is not mapped: it lands nothing and its staging model builds empty"
             for e in sorted(set(wanted) - set(mapping))]
    notes += [f"entity {e} is not read by staging (landed in raw/odoo/{e}/ only)" for e in sorted(set(mapping) - set(wanted))]
    return errors, notes


def check_contract(mapping: Dict[str, EntityMapping], path: str, contract_file: str = CONTRACT_FILE) -> List[str]:
    """Raise :class:`MappingError` naming every missing or mistyped column staging needs; returns the notes."""
    with open(contract_file, "r", encoding="utf-8") as fh:
        contract = (yaml.safe_load(fh) or {}).get("odoo") or {}
    errors, notes = contract_problems(mapping, contract)
    if errors:
        raise MappingError(f"odoo mapping {path} does not give staging what it reads: " + "; ".join(errors))
    return notes
