"""GA4 BigQuery-export extractor (NDJSON per day) -> raw/ga4/events/. Entry point: :func:`extract`.

One load per export day (a re-delivered day becomes a new load of the same ``_export_date``; staging keeps
the latest load per day). With ``CXW_GA4_INTRADAY`` (on by default when ``CXW_SCHEDULE=hourly``) a day whose daily
table ``events_YYYYMMDD`` has not landed yet is read from its streaming table ``events_intraday_YYYYMMDD`` (the day so
far; each change of it lands again, as a re-delivery does); when the daily table lands it is landed as that day's
next load and staging keeps it over every intraday load of the day (``_export_table``), whatever the load order.
"""
from __future__ import annotations

import base64
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Optional


from extractors.common.runner import EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .helpers import (Ga4ReadError, connect, export_table, fast_read_days, finish_table, list_export,
                      locate_lines, stage_day_full, write_day, write_day_table)
from .settings import ENTITY, SOURCE, Ga4Settings

log = logging.getLogger("cxw.extractors.ga4")

__all__ = ["extract", "Ga4Settings", "Ga4ReadError"]


def _day_dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def _after_previous_loads(last_load_id: Optional[str]) -> None:
    """Load ids sort by their UTC second, then by random hex: a run that starts within the second of the previous
    run's last load waits for the next second, so a re-delivered day's new load sorts after its earlier load
    (staging keeps the max ``_load_id`` of each export day)."""
    if not last_load_id:
        return
    stamp = last_load_id.split("-")[1] if last_load_id.count("-") >= 2 else ""
    give_up = time.monotonic() + 1.5          # a clock that went backwards is not waited for
    while datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") <= stamp and time.monotonic() < give_up:
        time.sleep(0.05)


def _batches(pending, days: int, max_bytes: int):
    batch, size = [], 0
    for item in pending:
        b = sum(int(f.get("size") or 0) for f in item[1])
        if batch and (len(batch) >= days or size + b > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += b
    if batch:
        yield batch


def _slow_day(run, con, export, day, files, fp, land_day, forced: bool, intraday: bool = False) -> None:
    """The line path: every line as text, bad lines (not a JSON object, not UTF-8) dead-lettered with file/line,
    good lines typed with json_transform, unknown fields kept in ``_extra_json``."""
    with run.load(ENTITY) as ctx:
        good, bad, dups, undecodable = stage_day_full(con, export, files)
        unknown = []
        path = None
        if good:
            path = ctx.open_writer().next_part_path()
            # when the fast path refused the day (forced) and it has no bad line, some key was not typed:
            # compute the depth-aware extras for every row
            unknown = write_day(con, day, path, ctx.load_id, ctx.extracted_at, force_extras=forced and not bad,
                                intraday=intraday)
            if unknown:
                log.warning("ga4 %s: fields not in the schema kept in _extra_json: %s", day, unknown)
        if bad:
            by_file: Dict[str, List[str]] = {}
            for f, line in bad:
                by_file.setdefault(f, []).append(line)
            for f, lines in by_file.items():
                where = locate_lines(export, f, lines)
                for line in lines:
                    nums = where.get(line, [None])
                    n = nums.pop(0) if len(nums) > 1 else nums[0]
                    ctx.deadletters.write("GA4 export line is not a JSON object", method="READ",
                                          url=os.path.basename(f), status=None, payload=line,
                                          file=f, line=n)
        for f, n, raw in undecodable:
            # the line as delivered, exactly (base64) and readable (invalid bytes shown as U+FFFD)
            ctx.deadletters.write("GA4 export line is not valid UTF-8", method="READ", url=os.path.basename(f),
                                  status=None, payload=raw, payload_base64=base64.b64encode(raw).decode("ascii"),
                                  file=f, line=n)
        if undecodable:
            log.warning("ga4 %s: %d line(s) not valid UTF-8 dead-lettered (load %s); the day's other lines land",
                        day, len(undecodable), ctx.load_id)
        land_day(day, files, fp, ctx, good, dups, path, unknown, "line")


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[Ga4Settings] = None) -> Dict[str, Any]:
    settings = settings or Ga4Settings.from_env()
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env())
    est = run.entity_state(ENTITY)
    cursor_before = est.get("cursor")          # last exported day, ISO
    fingerprints: Dict[str, str] = dict(est.get("days") or {})
    end_day = (run.window_end - timedelta(microseconds=1)).date()  # window end exclusive
    if mode == "window":
        first_day = run.window_start.date()
    else:
        first_day = run.history_start.date()
    # ONE listing of the export (names, sizes, mtimes / ETags from the listing: no file is opened). Every day is
    # compared with the fingerprint it had when it was landed, whatever its age: a day BigQuery re-exports (late
    # hits, a backfill, a fixed export) lands again, an unchanged day costs nothing. This replaces the lookback.
    export, available = list_export(settings.export_url, settings.storage_options)   # missing / denied: config error
    # a day whose daily table has not landed: its intraday table (the day so far). The daily table always wins: a day
    # listed with both (GA4 deletes the intraday table once the daily one completes) is read from the daily table.
    intraday_days = set()
    if settings.intraday:
        for d, files in export.intraday.items():
            if d not in available:
                available[d] = files
                intraday_days.add(d)
    todo = sorted(d for d in available
                  if d <= end_day and (first_day <= d or (mode != "window" and d.strftime("%Y%m%d") in fingerprints)))
    cursor = cursor_before
    landed = 0
    pending = []                                   # (day, files, fingerprint) to land, in day order
    redelivered: List[Dict[str, Any]] = []         # days landed before whose fingerprint changed
    for day in todo:
        key = day.strftime("%Y%m%d")
        fp = export.fingerprint(available[day])
        if mode == "incremental" and fingerprints.get(key) == fp:
            continue  # unchanged since it was landed
        pending.append((day, available[day], fp))
    if not pending:
        log.info("ga4: %d export days listed, none new or changed", len(available))
    con = connect(export) if pending else None     # a run with nothing to read starts no DuckDB
    if pending:
        _after_previous_loads(est.get("last_load_id"))

    def land_day(day, files, fp, ctx, rows, dups, path, unknown, read_path):
        nonlocal cursor, landed
        key = day.strftime("%Y%m%d")
        previous_fp = fingerprints.get(key)
        win = EntityWindow(ENTITY, _day_dt(day), _day_dt(day + timedelta(days=1)), cursor, cursor is None)
        writer = ctx.open_writer()
        if rows:
            writer.add_file(path, rows)
        day_iso = day.isoformat()
        new_cursor = cursor
        if mode == "incremental" and (cursor is None or day_iso > cursor):
            new_cursor = day_iso
        fingerprints[key] = fp

        def update(state, key=key, fp=fp):
            state["entities"][ENTITY].setdefault("days", {})[key] = fp

        is_redelivery = previous_fp is not None and previous_fp != fp
        row = ctx.land(win, EntityLoad(ENTITY, duplicates=dups,
                                       extra_meta={"export_date": day_iso, "fingerprint": fp,
                                                   "export_table": export_table(day, day in intraday_days),
                                                   "unknown_fields": unknown, "read_path": read_path,
                                                   "redelivered": is_redelivery,
                                                   "export_files": [f["name"].rsplit("/", 1)[-1] for f in files]}),
                       cursor_after=new_cursor, state_update=update)
        if is_redelivery:
            # a newer delivery of a day landed before: staging keeps the latest load of each export day
            redelivered.append({"export_date": day_iso, "load_id": row["load_id"], "rows": row["rows"],
                                "export_table": export_table(day, day in intraday_days)})
            log.info("ga4: export day %s re-delivered (fingerprint changed): landed again, %d rows", day_iso,
                     row["rows"])
        cursor = new_cursor
        landed += 1

    # Pipeline: read batch k (one parallel DuckDB scan), start writing its days' Parquet in threads (pyarrow
    # releases the GIL), then land batch k-1 in day order while those writes and the next read run.
    pool = ThreadPoolExecutor(max_workers=2) if settings.fast_path else None
    queued: List[tuple] = []            # ("fast", day, files, fp, ctx, path, future, dups) | ("line", day, files, fp)

    def drain(items, count: int) -> None:
        for _ in range(count):
            item = items.pop(0)
            if item[0] == "fast":
                _, day, files, fp, ctx, path, fut, dups = item
                rows = fut.result() if fut is not None else 0
                land_day(day, files, fp, ctx, rows, dups, path, [], "fast")
            else:
                _, day, files, fp = item
                _slow_day(run, con, export, day, files, fp, land_day, forced=settings.fast_path,
                          intraday=day in intraday_days)

    # every fast-path day's load is entered here when its write starts and landed in day order later: a failure
    # anywhere aborts the ones not landed yet (after their writes finished, see ``finally``)
    with ExitStack() as day_loads:
        try:
            for batch in _batches(pending, settings.batch_days, settings.batch_bytes):
                fast = {}
                if settings.fast_path:
                    t0 = time.monotonic()
                    fast = fast_read_days(con, export, [(d, f) for d, f, _fp in batch])
                    log.debug("ga4: fast path read %d/%d days in %.2fs", len(fast), len(batch),
                              time.monotonic() - t0)
                previous = len(queued)        # the earlier batch's days, landed below
                for day, files, fp in batch:  # everything not landed yet stays listed in queued
                    if day in fast:
                        ctx = day_loads.enter_context(run.load(ENTITY))
                        path = ctx.open_writer().next_part_path()
                        table = finish_table(fast[day][0], day, intraday=day in intraday_days)
                        fut = pool.submit(write_day_table, table, path, ctx.load_id, ctx.extracted_at) \
                            if table.num_rows else None
                        queued.append(("fast", day, files, fp, ctx, path, fut, fast[day][1]))
                    else:
                        queued.append(("line", day, files, fp))
                fast = None
                drain(queued, previous)
            drain(queued, len(queued))
        finally:
            for item in queued:     # a failure: let running writes finish before their loads are aborted
                if item[0] == "fast" and item[6] is not None:
                    try:
                        item[6].result()
                    except BaseException:  # noqa: BLE001 - the first error is already propagating
                        pass
            if pool is not None:
                pool.shutdown(wait=True)
    if landed == 0:
        # nothing new or re-delivered: an empty load keeps accounting complete
        start = _day_dt(first_day)      # every day from here was compared with its fingerprint
        win = EntityWindow(ENTITY, start, run.window_end, cursor_before, False)
        with run.load(ENTITY) as ctx:
            ctx.land(win, EntityLoad(ENTITY, duplicates=0, extra_meta={"export_date": None}),
                     cursor_after=cursor_before)
    if con is not None:
        con.close()
    rep = report(run)
    rep["redelivered_days"] = redelivered
    rep["intraday_days"] = sorted(d.isoformat() for d in intraday_days)
    return rep

