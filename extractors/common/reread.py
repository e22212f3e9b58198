"""Periodic full re-reads with an id snapshot, for APIs that cannot say what changed or disappeared.

Review sites filter by creation time only (Trustpilot) or not at all (Google): an edit to an old review or a
deleted review is invisible to an incremental read. Every ``interval`` an extractor lists the whole source and lands,
next to its normal load, ``<entity>__ids``: every id the source holds at that moment (the same shape as the Odoo
``<table>__ids`` snapshots). Staging marks a record deleted when its id is missing from the newest snapshot taken
after the record was last landed (dbt_project/macros/hard_deletes.sql). Incremental runs only: a backfill never
reconciles. Due-ness is measured on the data interval (``window_end``), so a re-run of an interval repeats nothing.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, Iterable, Optional

import pyarrow as pa

from .runner import EPOCH, EntityLoad, EntityWindow, ExtractRun
from .settings import iso, parse_utc

IDS_SUFFIX = "__ids"


def interval_days(days: int) -> Optional[timedelta]:
    """A ``CXW_*_FULL_REREAD_DAYS`` value: N > 0 every N days, 0 every run, negative never (None)."""
    return None if days < 0 else timedelta(days=days)


def full_reread_due(run: ExtractRun, entity: str, interval: Optional[timedelta]) -> bool:
    """True on an incremental run when no id snapshot of ``entity`` was landed yet, or the last one was landed for a
    data interval ending ``interval`` or more before this one."""
    if run.mode != "incremental" or interval is None:
        return False
    last = run.entity_state(entity + IDS_SUFFIX).get("snapshot_window_end")
    return last is None or run.window_end - parse_utc(last) >= interval


def land_id_snapshot(run: ExtractRun, entity: str, column: str, ids: Iterable[Any],
                     extra_meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Land ``<entity>__ids`` (one string column ``column``, distinct ids, sorted) and record the snapshot's
    window end in the state. Call it after the entity's own load landed (its ``_extracted_at`` is then later)."""
    name = entity + IDS_SUFFIX
    uniq = sorted({str(i) for i in ids if i not in (None, "")})
    win = EntityWindow(name, EPOCH, run.window_end, None, True)
    tables = [pa.table({column: pa.array(uniq, pa.string())})] if uniq else []
    meta = {"snapshot": True, "snapshot_of": entity, "id_column": column, "full_snapshot": True}
    meta.update(extra_meta or {})
    with run.load(name) as ctx:
        return ctx.land(win, EntityLoad(name, tables=tables, ids=uniq,
                                        extra_state={"snapshot_window_end": iso(run.window_end)}, extra_meta=meta),
                        cursor_after=None)
