"""The volume rule of the raw gate and its suite, `raw.load_log`: each new load's rows against the median of comparable
previous loads of its entity.

`volume_log_rows` writes the load log — one row per new load: its kind (`load_kind`), rows, baseline
(`volume_baseline`: basis, loads, median), `min_rows` (the row count a drop of `drop` or more falls below) and whether
a failure blocks (a full baseline of `lookback` comparable loads whose median is at least `min_rows`); `volume_suite`
checks rows ≥ min_rows on it (blocking rows: error, the others: warn); `offending_loads` names the loads a failed check
blames.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .marts_suites import Check


@dataclass(frozen=True)
class VolumeRule:
    lookback: int = 7  # comparable loads of a full baseline
    drop: float = 0.9  # a drop of this share or more fails
    min_rows: float = 50  # a baseline median below this only warns
    history_start: str | None = None  # CXW_HISTORY_START: a window from here is a history load
    hourly: bool = False  # CXW_SCHEDULE=hourly: an hour's delta only warns (a quiet hour is normal)

    @classmethod
    def from_env(cls) -> "VolumeRule":
        """CXW_GATE_VOLUME_LOOKBACK, CXW_GATE_VOLUME_DROP, CXW_GATE_VOLUME_MIN_ROWS, CXW_HISTORY_START, CXW_SCHEDULE."""
        from ..settings import settings

        s = settings()
        return cls(lookback=int(float(s.gate_volume_lookback)), drop=float(s.gate_volume_drop),
                   min_rows=float(s.gate_volume_min_rows), history_start=s.history_start,
                   hourly=s.schedule == "hourly")


def volume_suite() -> list[Check]:
    """On the load log of the new loads: source, entity, load_id, rows, baseline_median, min_rows, blocking."""
    return [
        Check("ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "rows", "column_B": "min_rows", "or_equal": True, "row_condition": "blocking",
               "condition_parser": "pandas"},
              why="volume drop ≥ 90% vs the median of a full baseline of comparable loads"),
        Check("ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "rows", "column_B": "min_rows", "or_equal": True, "row_condition": "~blocking",
               "condition_parser": "pandas"}, severity="warn",
              why="volume drop ≥ 90% on a baseline too short (fewer comparable loads than the lookback) or too "
                  "small (median below the blocking minimum) to block"),
    ]


def rows_vs_min_rows_only(checks) -> bool:
    """True when every check of the volume suite is "rows ≥ min_rows" (on some row condition): then a load at or above
    its min_rows passes the suite whatever GX computes, and a load repeating validated content need not go through
    it."""
    return bool(checks) and all(
        c.expectation == "ExpectColumnPairValuesAToBeGreaterThanB" and c.kwargs.get("column_A") == "rows"
        and c.kwargs.get("column_B") == "min_rows" and c.kwargs.get("or_equal") is True for c in checks)


def volume_log_rows(source: str, entity: str, group: list, new: list, rule: VolumeRule) -> list[dict]:
    """The load log rows of ``new`` (loads of ``group``, the entity's loads in load order): each new load vs the
    median of its baseline (`volume_baseline`). It blocks only on a full baseline (`lookback` comparable loads) that
    is not tiny (median ≥ rule.min_rows rows); otherwise it warns."""
    lookback, drop, min_baseline = rule.lookback, rule.drop, rule.min_rows
    log_rows = []
    memo: dict = {}
    # GA4 export days that already landed rows: a later delivery of such a day may be empty (a re-read; staging
    # keeps the day's rows), while the FIRST delivery of a day with 0 rows is a 100 % drop like any other.
    days_with_rows = {}
    for x in group:
        if x.meta.get("export_date") and int(x.meta.get("rows") or 0) > 0:
            days_with_rows.setdefault(str(x.meta["export_date"]), x.load_id)
    for ld in new:
        kind = load_kind(ld.meta, rule.history_start)
        base = volume_baseline(ld, group, lookback, memo, rule.history_start)
        rows = int(ld.meta.get("rows") or 0)
        export_day = str(ld.meta["export_date"]) if kind == "day" else None
        median = None
        if kind in ("delta", "window") or (kind == "day" and (
                rows != 0 or days_with_rows.get(export_day, ld.load_id) >= ld.load_id)):
            median = _baseline_median(ld, base["loads"], kind)
        min_rows = math.floor(round(median * (1 - drop), 9)) + 1 if median is not None else 0
        log_rows.append({"source": source, "entity": entity, "load_id": ld.load_id, "kind": kind,
                         "export_date": export_day, "rows": rows, "baseline_loads": len(base["loads"]),
                         "baseline": base["basis"],
                         "comparable_loads": base["comparable_loads"], "baseline_median": median,
                         "min_rows": min_rows,
                         # hourly runs: an hour's delta is judged against recent hours, whose volume swings with the
                         # time of day - a quiet hour warns, it never blocks publication
                         "blocking": bool(median is not None and base["comparable_loads"] >= lookback
                                          and median >= min_baseline and not (rule.hourly and kind == "delta"))})
    return log_rows


def offending_loads(log_df, result: dict, rule: VolumeRule) -> list[str]:
    """For a failed check of the volume suite: each load of the load log (``log_df``) under its row condition whose
    rows fell below its min_rows, described with its baseline."""
    lookback, min_baseline = rule.lookback, rule.min_rows
    cond = (log_df["blocking"] if result["row_condition"] == "blocking" else ~log_df["blocking"])
    bad = log_df[cond & (log_df["rows"] < log_df["min_rows"])]
    return [
        f"{b.load_id}: raw.{b.source}__{b.entity}"
        + (f" export day {b.export_date}" if isinstance(b.export_date, str) else "")
        + f" has {b.rows} rows vs median {b.baseline_median:g} "
        f"of its {b.baseline_loads} previous {b.baseline} loads"
        + ("" if b.baseline == "comparable" or b.baseline_loads >= lookback
           else f" (lower than the median of its last {b.comparable_loads} comparable loads)")
        + ("" if b.blocking else
           f" (warn only: a block needs {lookback} comparable loads)" if b.comparable_loads < lookback
           else f" (warn only: median below CXW_GATE_VOLUME_MIN_ROWS={min_baseline:g})")
        for b in bad.itertuples()]


def volume_baseline(ld, group: list, lookback: int, memo: dict | None = None,
                    history_start: str | None = None) -> dict:
    """What the volume of ``ld`` (a load of ``group``, its entity's loads in load order) is judged against.

    Comparable loads: the previous loads of the entity of the same kind (`load_kind`) with data. Daily loads (GA4 export
    days, daily deltas) have weekly seasonality — a Sunday is not a quiet Monday — so:
      * with ``lookback`` earlier loads of the same weekday: the last ``lookback`` of them;
      * with fewer: the last ``lookback`` comparable loads, or the same-weekday loads there are if their median is
        lower (a drop must be a drop against both: the second Sunday of a business closed on Sundays is not a
        90 % drop against the week);
      * otherwise (not daily): the last ``lookback`` comparable loads.
    Returns {"loads", "basis" ("comparable" | "same-weekday"), "comparable_loads"}; the check blocks only when
    ``comparable_loads`` reaches ``lookback`` (a full baseline), else it warns."""
    memo = {} if memo is None else memo  # load_id → (kind, weekday): a first GA4 run lands hundreds of days

    def kind_day(x) -> tuple[str, int | None]:
        if x.load_id not in memo:
            k = load_kind(x.meta, history_start)
            memo[x.load_id] = (k, _weekday(x.meta, k))
        return memo[x.load_id]

    idx = group.index(ld)
    kind, wd = kind_day(ld)
    earlier = [x for x in group[:idx] if kind_day(x)[0] == kind and int(x.meta.get("rows") or 0) > 0]
    recent = earlier[-lookback:]
    same = [x for x in earlier if kind_day(x)[1] == wd][-lookback:] if wd is not None else []
    if len(same) >= lookback:
        return {"loads": same, "basis": "same-weekday", "comparable_loads": len(recent)}
    if same and recent:
        m_same, m_recent = _baseline_median(ld, same, kind), _baseline_median(ld, recent, kind)
        if m_same is not None and m_recent is not None and m_same < m_recent:
            return {"loads": same, "basis": "same-weekday", "comparable_loads": len(recent)}
    return {"loads": recent, "basis": "comparable", "comparable_loads": len(recent)}


def _baseline_median(ld, earlier: list, kind: str) -> float | None:
    """The rows ``ld`` is expected to have by the median of ``earlier``: their rows; for a delta or window, their
    rows per hour times ``ld``'s hours (its window is cursor − overlap .. interval end: a re-run of an interval whose
    cursor is already at its end, a window of minutes, expects almost nothing)."""
    prev = [int(x.meta.get("rows") or 0) for x in earlier]
    if not prev:
        return None
    if kind not in ("delta", "window"):
        return float(statistics.median(prev))
    hours = _window_hours(ld.meta)
    rates = [r / h for r, h in ((int(x.meta.get("rows") or 0), _window_hours(x.meta)) for x in earlier) if h]
    if hours and rates:
        return float(statistics.median(rates)) * hours
    return None if hours else float(statistics.median(prev))


def load_kind(meta: dict, history_start: str | None = None) -> str:
    """The class of loads a load's volume is comparable with (loads of one entity are compared only within a class):

    * ``intraday`` — a GA4 intraday table (``export_table`` events_intraday_YYYYMMDD, CXW_GA4_INTRADAY): the day
      so far, no volume check (an early hour holds a fraction of a day; the daily table is checked when it lands);
    * ``day`` — one GA4 export day: other export days;
    * ``snapshot`` — a complete copy every run (Odoo reference tables and id lists, HubSpot archived lists): other
      snapshots;
    * ``window`` — a backfill's exact data interval (mode window): other backfill windows;
    * ``history`` — everything since the history start: the first load of an entity (no cursor yet) or a full
      re-read (a window from the epoch or the history start). Never the baseline of a delta — a two-year load says
      nothing about a day — and compared only with another history load;
    * ``delta`` — an incremental load since the cursor (minus the overlap): other deltas, per hour of window.

    Volume is checked for days, deltas and windows; a snapshot or history load has no volume check (a history
    load has no comparable predecessor).
    """
    if str(meta.get("export_table") or "").startswith("events_intraday_"):
        return "intraday"
    if meta.get("export_date"):
        return "day"
    if meta.get("snapshot") or meta.get("full_snapshot"):
        return "snapshot"
    if str(meta.get("mode", "")) == "window":
        return "window"
    if meta.get("cursor_before") in (None, "") or _reaches_history_start(meta, history_start):
        return "history"
    return "delta"


def _utc(v) -> datetime | None:
    try:
        d = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _reaches_history_start(meta: dict, history_start: str | None) -> bool:
    start = _utc(meta.get("window_start"))
    if start is None:
        return False
    floor = _utc(history_start or "1970-01-02")
    return start <= max(floor, datetime(1970, 1, 2, tzinfo=timezone.utc)) if floor else False


def _weekday(meta: dict, kind: str) -> int | None:
    """The weekday a daily load stands for: a GA4 export day's, or a daily delta's (one whose new span — the
    previous cursor to the interval end — is about one day): the weekday of its interval's last day. None for
    anything else (an hourly or catch-up delta, a snapshot, a history load)."""
    if kind == "day":
        try:
            return date.fromisoformat(str(meta["export_date"])[:10]).weekday()
        except (KeyError, ValueError):
            return None
    if kind != "delta":
        return None
    a, b = _utc(meta.get("cursor_before")), _utc(meta.get("window_end"))
    if a is None or b is None or not 20 <= (b - a).total_seconds() / 3600 <= 28:
        return None
    return (b - timedelta(microseconds=1)).weekday()


def _window_hours(meta: dict) -> float | None:
    """Length of a load's extraction window in hours, None when the manifest does not say."""
    try:
        a = datetime.fromisoformat(str(meta["window_start"]).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(meta["window_end"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None
    h = (b - a).total_seconds() / 3600.0
    return h if h > 0 else None
