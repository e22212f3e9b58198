"""The raw gate's volume rule under CXW_SCHEDULE=hourly (cxw/gate/volume.py): a quiet hour (a delta with no row after
busy hours) warns and never blocks publication, a GA4 intraday table (the day so far) is not judged against whole
export days, and the daily table that replaces it still is. Daily runs keep blocking on a full baseline."""
from __future__ import annotations

from pathlib import Path

from cxw.gate.volume import VolumeRule, load_kind, volume_log_rows
from cxw.loader import RawLoad


def _delta(i: int, rows: int) -> RawLoad:
    start, end = f"2025-03-01T{i:02d}:00:00+00:00", f"2025-03-01T{i + 1:02d}:00:00+00:00"
    return RawLoad("hubspot", "tickets", f"hubspot-20250301T{i + 1:02d}0000-aaaaaaaa", Path("."),
                   {"rows": rows, "window_start": start, "window_end": end, "cursor_before": start,
                    "mode": "incremental"})


def _day(i: int, rows: int, table: str) -> RawLoad:
    return RawLoad("ga4", "events", f"ga4-202503{i:02d}T230000-bbbbbbbb", Path("."),
                   {"rows": rows, "export_date": f"2025-03-{i:02d}", "export_table": f"{table}202503{i:02d}"})


def test_a_quiet_hour_warns_but_does_not_block_when_hourly():
    group = [_delta(i, 400) for i in range(9)] + [_delta(9, 0)]
    [daily] = volume_log_rows("hubspot", "tickets", group, group[-1:], VolumeRule())
    [hourly] = volume_log_rows("hubspot", "tickets", group, group[-1:], VolumeRule(hourly=True))
    assert daily["rows"] < daily["min_rows"] and daily["blocking"]        # daily runs: a 100 % drop blocks
    assert hourly["rows"] < hourly["min_rows"] and not hourly["blocking"]  # hourly: a quiet hour only warns


def test_an_intraday_table_is_not_judged_against_whole_days_but_the_daily_table_is():
    days = [_day(i, 1000, "events_") for i in range(1, 9)]
    early = _day(9, 30, "events_intraday_")                 # 01:00: the day so far
    assert load_kind(early.meta) == "intraday"
    [row] = volume_log_rows("ga4", "events", days + [early], [early], VolumeRule(hourly=True))
    assert row["kind"] == "intraday" and row["min_rows"] == 0 and not row["blocking"]
    truncated = RawLoad("ga4", "events", "ga4-20250310T050000-cccccccc", Path("."),
                        {"rows": 30, "export_date": "2025-03-09", "export_table": "events_20250309"})
    [row] = volume_log_rows("ga4", "events", days + [early, truncated], [truncated], VolumeRule(hourly=True))
    assert row["kind"] == "day" and row["rows"] < row["min_rows"] and row["blocking"]
