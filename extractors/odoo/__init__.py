"""Odoo 17 (or any SQL ERP described by a YAML mapping) extractor -> raw/odoo/<entity>/.

Reads with connectorx into Arrow record batches (never Python rows) from SQLite, PostgreSQL or
MySQL/MariaDB. Entry point: :func:`extract`.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Optional

import pyarrow as pa
import pyarrow.compute as pc

from extractors.common.redact import redact_text, without_values
from extractors.common.runner import EPOCH, EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import ConfigurationError, history_start_from_env, iso, parse_utc

from .helpers import (TABLE_REJECTED, DatabaseRejected, ids_mapping, ids_sql, normalize, preflight, read_batches, select_sql,
                      source_columns, to_connectorx, type_error_counts)
from .mapping import IDS_SUFFIX, EntityMapping, MappingError, check_contract, load_mapping
from .settings import SOURCE, OdooSettings

log = logging.getLogger("cxw.extractors.odoo")

__all__ = ["extract", "OdooSettings", "MappingError", "OdooReadError", "OdooConfigError",
           "OdooSchemaError"]


class OdooReadError(RuntimeError):
    pass


class OdooConfigError(OdooReadError, ConfigurationError):
    """The database answered and refused (wrong user or password, a database or mapped table that does not exist,
    no access): a configuration error, never retried; the message names the setting (CXW_ODOO_URL or
    CXW_ODOO_MAPPING), never the password."""

    def __init__(self, message: str, *, setting: str, fix: str) -> None:
        OdooReadError.__init__(self, message)
        self.source, self.setting, self.endpoint, self.fix = SOURCE, setting, None, fix


class OdooSchemaError(OdooReadError):
    """A source table lost a column the mapping requires: that entity's load is not landed (cursor kept), the other
    entities land, then the run fails with this message."""


def _schema_check(run: ExtractRun, conn, m: EntityMapping, settings: OdooSettings):
    """(drift report or None, optional mapped columns to leave out, error message or None) for one entity: the
    source table's columns now vs the mapping (a missing required column fails the entity) and vs the columns seen
    by the previous run (new / dropped columns are reported: schema drift)."""
    cols = source_columns(conn, m.table)
    if cols is None:
        return None, set(), None
    have = {c.lower() for c in cols}
    missing = [c for c in m.columns if not c.expr and c.src.lower() not in have]
    required = [c.src for c in missing if c.required]
    before = run.entity_state(m.entity).get("source_columns")
    drift = None
    if before is not None:
        new = sorted(set(cols) - set(before))
        dropped = sorted(set(before) - set(cols))
        if new or dropped:
            drift = {"entity": m.entity, "table": m.table, "new_columns": new, "dropped_columns": dropped,
                     "mapped_columns_missing": [c.name for c in missing]}
            log.warning("odoo.%s: source table %s changed columns: new %s, dropped %s", m.entity, m.table,
                        new or "none", dropped or "none")
    error = None
    if required:
        error = (f"odoo.{m.entity}: the source table {m.table} has no column {', '.join(required)} any more, which "
                 f"the mapping ({settings.mapping_path}) requires; this entity's load was not landed and its cursor "
                 f"is unchanged. Restore the column, or mark it `required: false` in the mapping (it then lands as "
                 f"NULL) or remove it (CXW_ODOO_MAPPING).")
    return drift, {c.name for c in missing if not c.required}, (error, sorted(cols))


def _duplicates(ids: List[pa.ChunkedArray]) -> int:
    if not ids:
        return 0
    arr = pa.chunked_array([c for a in ids for c in a.chunks], ids[0].type)
    valid = pc.drop_null(arr)
    return len(valid) - pc.count_distinct(valid).as_py()


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[OdooSettings] = None) -> Dict[str, Any]:
    settings = settings or OdooSettings.from_env()
    mapping = load_mapping(settings.mapping_path)
    if settings.entities is None:  # the pipeline's run: the mapping must give staging every column it reads
        for note in check_contract(mapping, settings.mapping_path):
            log.info("odoo mapping: %s", note)
    else:
        unknown = [e for e in settings.entities if e not in mapping]
        if unknown:
            raise MappingError(f"odoo: entities {', '.join(unknown)} are not in the mapping {settings.mapping_path}")
    if settings.id_snapshots not in ("auto", "always", "never"):
        raise ValueError(f"odoo: id_snapshots must be auto, always or never, got {settings.id_snapshots!r}")
    conn = to_connectorx(settings.url)
    try:
        preflight(settings.url, conn, settings.connect_timeout_s)
    except DatabaseRejected as exc:
        raise OdooConfigError(f"{exc} (not retried: the database refused, check CXW_ODOO_URL)", setting="CXW_ODOO_URL",
                              fix="check the user, password, host and database name in CXW_ODOO_URL (the database "
                                  "answered and refused them) and that the user may connect") from None
    except ConnectionError as exc:
        raise OdooReadError(str(exc)) from None
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env(), secrets=conn.secrets)
    entities = settings.entities or list(mapping)
    schema_errors: List[str] = []
    drifts: List[Dict[str, Any]] = []
    for name in entities:
        m = mapping[name]
        drift, skip, checked = _schema_check(run, conn, m, settings)
        if drift:
            drifts.append(drift)
        if checked and checked[0]:
            schema_errors.append(checked[0])
            log.error("%s", checked[0])
            continue
        if m.cursor:
            win = run.window(name, m.lookback, unbounded_first_run=True)
        else:  # full snapshot every run
            win = EntityWindow(name, run.history_start, run.window_end, None, True)
        sql = select_sql(conn, m, win.start if m.cursor else None, win.end if m.cursor else None,
                         include_null_cursor=bool(m.cursor and win.full_history), skip=skip)
        with run.load(name) as ctx:
            writer = ctx.open_writer()
            ids: List[pa.ChunkedArray] = []
            type_errors: Dict[str, int] = {}
            try:
                for batch in read_batches(conn, sql, settings.batch_rows):
                    table = normalize(batch, m)
                    if m.id_column in table.schema.names:
                        ids.append(table.column(m.id_column))
                    for field, n in type_error_counts(table).items():
                        type_errors[field] = type_errors.get(field, 0) + n
                    writer.write_table(table)
            except (MappingError, KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # connectorx reports some source errors as a Rust panic (BaseException)
                text = without_values(redact_text(str(exc), conn.secrets))
                if checked is None and TABLE_REJECTED.search(str(exc)):
                    # the catalog does not list the table's columns and the read was refused: a missing table or
                    # no grant
                    raise OdooConfigError(
                        f"odoo: reading {name} from {m.table} failed: {text} (not retried)",
                        setting="CXW_ODOO_MAPPING",
                        fix=f"the table {m.table} does not exist or the CXW_ODOO_URL user may not read it: correct "
                            f"the entity's table in CXW_ODOO_MAPPING or grant SELECT on it") from None
                raise OdooReadError(f"odoo: reading {name} from {m.table} failed: {text}") from None
            cursor_after = run.next_cursor(win) if m.cursor else None
            if type_errors:
                # counts and field names only: the values stay in the raw rows (_type_error_values) for the review
                log.warning("odoo.%s: values that do not parse as their mapped type land NULL and staging "
                            "quarantines their records: %s", name,
                            ", ".join(f"{f} {n}" for f, n in sorted(type_errors.items())))
            meta = {"table": m.table, "cursor_column": m.cursor, "full_snapshot": not bool(m.cursor)}
            if type_errors:
                meta["type_errors"] = type_errors
            if drift:
                meta["schema_drift"] = {k: v for k, v in drift.items() if k not in ("entity", "table")}
            ctx.land(win, EntityLoad(name, duplicates=_duplicates(ids), extra_meta=meta,
                                     extra_state={"source_columns": checked[1]} if checked else {}),
                     cursor_after=cursor_after)
        if _id_snapshot_due(run, m, settings):
            _land_id_snapshot(run, conn, m, settings)
    rep = report(run)
    rep["schema_drift"] = drifts
    if schema_errors:
        raise OdooSchemaError("\n".join(schema_errors))
    return rep


def _id_snapshot_due(run: ExtractRun, m: EntityMapping, settings: OdooSettings) -> bool:
    """Incremental runs only (a backfill never reconciles); ``settings.id_snapshots``: "auto" (per mapping
    interval, measured on window_end), "always", "never"."""
    if run.mode != "incremental" or settings.id_snapshots == "never" or not m.cursor:
        return False
    if settings.id_snapshots == "always":
        return True
    if m.id_snapshot is None:
        return False
    last = run.entity_state(m.entity + IDS_SUFFIX).get("snapshot_window_end")
    return last is None or run.window_end - parse_utc(last) >= m.id_snapshot


def _land_id_snapshot(run: ExtractRun, conn, m: EntityMapping, settings: OdooSettings) -> None:
    """``<entity>__ids``: every id in the table right now (one column, the entity's id). Odoo deletes rows
    without a tombstone, so staging marks a record deleted when its id is missing from the newest snapshot
    taken after the record was last landed (see README)."""
    im = ids_mapping(m)
    name = im.entity
    win = EntityWindow(name, EPOCH, run.window_end, None, True)
    with run.load(name) as ctx:
        writer = ctx.open_writer()
        ids: List[pa.ChunkedArray] = []
        try:
            for batch in read_batches(conn, ids_sql(conn, m), settings.batch_rows):
                table = normalize(batch, im)
                ids.append(table.column(0))
                writer.write_table(table)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:
            raise OdooReadError(f"odoo: reading the ids of {m.entity} from {m.table} failed: "
                                f"{without_values(redact_text(str(exc), conn.secrets))}") from None
        snap_end = iso(run.window_end)
        ctx.land(win, EntityLoad(name, duplicates=_duplicates(ids),
                                 extra_state={"snapshot_window_end": snap_end},
                                 extra_meta={"table": m.table, "snapshot": True, "snapshot_of": m.entity,
                                             "id_column": m.id_column, "full_snapshot": True}),
                 cursor_after=None)

