"""GA4 BigQuery-export extractor (NDJSON per day) -> raw/ga4/events/. Entry point: :func:`extract`.

One load per export day (a re-delivered day becomes a new load of the same ``_export_date``; staging keeps
the latest load per day).
"""
from __future__ import annotations

import logging
import os
from datetime import date, datetime, timedelta
from typing import Any, Dict, List, Optional

import dlt

from extractors.common.runner import EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .helpers import ExportDir, connect, locate_lines, read_day, stage_day_stats, write_day
from .settings import ENTITY, SOURCE, Ga4Settings

log = logging.getLogger("cxw.extractors.ga4")

__all__ = ["extract", "Ga4Settings", "ga4_source"]


def _day_dt(d: date) -> datetime:
    from datetime import timezone
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[Ga4Settings] = None) -> Dict[str, Any]:
    settings = settings or Ga4Settings.from_env()
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env())
    est = run.entity_state(ENTITY)
    cursor_before = est.get("cursor")          # last exported day, ISO
    fingerprints: Dict[str, str] = dict(est.get("days") or {})
    lookback = timedelta(days=settings.lookback_days)
    end_day = (run.window_end - timedelta(microseconds=1)).date()  # window end exclusive
    if mode == "window":
        first_day = run.window_start.date()
    elif cursor_before is None:
        first_day = run.history_start.date()
    else:
        first_day = date.fromisoformat(cursor_before[:10]) - lookback
    export = ExportDir(settings.export_url, settings.storage_options)
    available = export.days()
    todo = sorted(d for d in available if first_day <= d <= end_day)
    con = connect(export)
    cursor = cursor_before
    landed = 0
    for day in todo:
        key = day.strftime("%Y%m%d")
        fp = export.fingerprint(available[day])
        if mode == "incremental" and fingerprints.get(key) == fp:
            continue  # unchanged since it was landed
        win = EntityWindow(ENTITY, _day_dt(day), _day_dt(day + timedelta(days=1)), cursor, cursor is None)
        ctx = run.begin(ENTITY)
        try:
            good, bad, dups = stage_day_stats(con, export, available[day])
            unknown = []
            writer = ctx.open_writer()
            if good:
                part = writer.next_part_path()
                unknown = write_day(con, day, part, ctx.load_id, ctx.extracted_at)
                if unknown:
                    log.warning("ga4 %s: fields not in the schema kept in _extra_json: %s", day, unknown)
                writer.add_file(part, good)
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
        except BaseException:
            ctx.abort()
            raise
        day_iso = day.isoformat()
        new_cursor = cursor
        if mode == "incremental" and (cursor is None or day_iso > cursor):
            new_cursor = day_iso
        fingerprints[key] = fp

        def update(state, key=key, fp=fp):
            state["entities"][ENTITY].setdefault("days", {})[key] = fp

        ctx.land(win, EntityLoad(ENTITY, duplicates=dups,
                                 extra_meta={"export_date": day_iso, "fingerprint": fp, "unknown_fields": unknown,
                                             "export_files": [f["name"].rsplit("/", 1)[-1] for f in available[day]]}),
                 cursor_after=new_cursor, state_update=update)
        cursor = new_cursor
        landed += 1
    if landed == 0:
        # nothing new or re-delivered: an empty load keeps accounting complete
        start = _day_dt(first_day)
        win = EntityWindow(ENTITY, start, run.window_end, cursor_before, False)
        ctx = run.begin(ENTITY)
        ctx.land(win, EntityLoad(ENTITY, duplicates=0, extra_meta={"export_date": None}),
                 cursor_after=cursor_before)
    con.close()
    return report(run)


@dlt.source(name="ga4")
def ga4_source(days: List[date], settings: Optional[Ga4Settings] = None):
    """dlt source yielding one typed Arrow table per export day (bad lines are skipped here)."""
    settings = settings or Ga4Settings.from_env()

    @dlt.resource(name=ENTITY, write_disposition="append")
    def events():
        export = ExportDir(settings.export_url, settings.storage_options)
        available = export.days()
        con = connect(export)
        for d in days:
            if d in available:
                table, _bad = read_day(con, export, available[d], d)
                yield table

    return events
