"""The run skeleton every extractor shares: windows from state + mode, one entity load at a time
(``with run.load(entity) as ctx``: dead letters, abort on any error, land), state commit, report."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pyarrow as pa

from .deadletter import DeadLetterStore
from .landing import LoadWriter, clean_stale, count_duplicates, new_load_id
from .settings import iso, parse_utc, require_aware
from .state import StateStore

log = logging.getLogger("cxw.extractors.runner")

MODES = ("incremental", "window")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class EntityWindow:
    entity: str
    start: datetime          # inclusive
    end: datetime            # exclusive
    cursor_before: Optional[str]
    full_history: bool


@dataclass
class EntityLoad:
    """What an entity extraction produced, handed to ``ExtractRun.land``."""
    entity: str
    tables: List[pa.Table] = field(default_factory=list)
    ids: List[Any] = field(default_factory=list)
    duplicates: Optional[int] = None
    cursor_after: Optional[str] = None
    extra_state: Dict[str, Any] = field(default_factory=dict)
    extra_meta: Dict[str, Any] = field(default_factory=dict)


class ExtractRun:
    def __init__(self, source: str, *, raw_root, state_root, deadletter_root, window_start: datetime,
                 window_end: datetime, mode: str, history_start: datetime, secrets: Sequence[str] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.source = source
        self.raw_root = os.fspath(raw_root)
        self.deadletter_root = os.fspath(deadletter_root)
        self.window_start = require_aware("window_start", window_start)
        self.window_end = require_aware("window_end", window_end)
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        self.mode = mode
        self.history_start = history_start
        self.secrets = [s for s in secrets if s]
        self.state_store = StateStore(state_root, source)
        clean_stale(self.raw_root, source)
        self.state = self.state_store.load()
        self.loads: List[Dict[str, Any]] = []
        self.started = time.monotonic()

    # ---- windows -------------------------------------------------------------------------------
    def entity_state(self, entity: str) -> Dict[str, Any]:
        return self.state.get("entities", {}).get(entity, {})

    def window(self, entity: str, lookback: timedelta, *, unbounded_first_run: bool = False) -> EntityWindow:
        """incremental: no state -> [history_start, window_end) (or [EPOCH, window_end) for entities that are
        current-state tables, e.g. CRM objects / ERP tables, where a record last modified before history_start
        is still needed); with state -> [cursor - lookback, window_end). window mode: exactly the window."""
        cursor_before = self.entity_state(entity).get("cursor")
        if self.mode == "window":
            return EntityWindow(entity, self.window_start, self.window_end, cursor_before, False)
        if cursor_before is None:
            start = EPOCH if unbounded_first_run else self.history_start
            return EntityWindow(entity, start, self.window_end, None, True)
        start = min(parse_utc(cursor_before) - lookback, self.window_end)
        return EntityWindow(entity, start, self.window_end, cursor_before, False)

    def next_cursor(self, win: EntityWindow) -> Optional[str]:
        """Incremental runs advance the cursor to the window end (everything before it has been read);
        window (backfill) runs never move it (so never backwards)."""
        if self.mode == "window":
            return win.cursor_before
        if win.cursor_before is not None and parse_utc(win.cursor_before) > win.end:
            return win.cursor_before
        return iso(win.end)

    # ---- loads ---------------------------------------------------------------------------------
    @contextmanager
    def load(self, entity: str, *, client: Any = None) -> Iterator["EntityContext"]:
        """One load of ``entity``, a transaction: a new load id and its dead-letter store (handed to the HTTP
        ``client``, when given, for the bad pages it meets), the reads inside the block, then ``ctx.land(...)`` as
        its last step. Any exception inside the block — raised by a read, by the caller's own translation of one
        (``raise OdooReadError(...) from None``) or by ``land`` itself — removes the load's temp dir (nothing
        visible, state and cursor unchanged; dead letters stay) and propagates. Leaving the block without landing
        is a bug: the temp dir is removed and ``RuntimeError`` raised."""
        ctx = EntityContext(self, entity, new_load_id(self.source))
        if client is not None:
            client.set_deadletters(ctx.deadletters)
        try:
            yield ctx
        except BaseException:
            ctx._abort()
            raise
        if ctx.row is None:
            ctx._abort()
            raise RuntimeError(f"{self.source}.{entity}: load {ctx.load_id} left without landing")


class EntityContext:
    """One entity load, made by :meth:`ExtractRun.load` (never directly)."""

    def __init__(self, run: ExtractRun, entity: str, load_id: str) -> None:
        self.run = run
        self.entity = entity
        self.load_id = load_id
        self.extracted_at = datetime.now(timezone.utc)
        self.deadletters = DeadLetterStore(run.deadletter_root, run.source, load_id, run.secrets)
        self.t0 = time.monotonic()
        self.writer: Optional[LoadWriter] = None
        self.row: Optional[Dict[str, Any]] = None     # the report row, once landed

    def open_writer(self) -> LoadWriter:
        if self.writer is None:
            self.writer = LoadWriter(self.run.raw_root, self.run.source, self.entity, self.load_id,
                                     self.extracted_at)
        return self.writer

    def _abort(self) -> None:
        if self.writer is not None and self.row is None:
            self.writer.abort()

    def land(self, win: EntityWindow, result: EntityLoad, *, cursor_after: Optional[str] = None,
             state_update: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """The last step of a ``with run.load(...)`` block: write parts + _load.json, rename (publish), then commit
        state atomically. Returns the report row."""
        run = self.run
        writer = self.open_writer()
        for table in result.tables:      # a failure here or in commit: ExtractRun.load removes the temp dir
            writer.write_table(table)
        duplicates = result.duplicates if result.duplicates is not None else count_duplicates(result.ids)
        cursor_after = cursor_after if cursor_after is not None else run.next_cursor(win)
        final_dir = writer.commit(
            window_start=iso(win.start), window_end=iso(win.end), cursor_before=win.cursor_before,
            cursor_after=cursor_after, dead_letters=self.deadletters.count, duplicates_in_load=duplicates,
            extra=dict(result.extra_meta, mode=run.mode))
        # state only after the data is visible: cursor and data commit together
        est = run.state_store.entity(run.state, self.entity)
        est["cursor"] = cursor_after
        est["last_load_id"] = self.load_id
        est.update(result.extra_state)
        if state_update is not None:
            state_update(run.state)
        run.state["source"] = run.source
        run.state_store.save(run.state)
        seconds = time.monotonic() - self.t0
        row = {
            "entity": self.entity, "load_id": self.load_id, "rows": writer.rows,
            "duplicates_in_load": duplicates, "dead_letters": self.deadletters.count,
            "cursor_before": win.cursor_before, "cursor_after": cursor_after,
            "seconds": round(seconds, 4), "rows_per_s": round(writer.rows / seconds, 1) if seconds > 0 else None,
            "path": final_dir,
        }
        run.loads.append(row)
        self.row = row
        log.info("%s.%s: landed %d rows in %.2fs (%s)", run.source, self.entity, writer.rows, seconds, self.load_id)
        return row


def report(run: ExtractRun) -> Dict[str, Any]:
    return {"source": run.source, "mode": run.mode, "loads": run.loads}
