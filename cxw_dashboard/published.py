"""Read the published DuckDB file the way BI must: read-only, briefly, and again when a new generation is switched in.

`cxw.publish` replaces the published file by one atomic rename (a hard link to the new generation file); a reader
that keeps a connection open keeps reading the inode it opened. The dashboard therefore never keeps the file open:
each new generation (a new inode, or a new mtime/size) is opened read-only once, everything the pages show is read
into memory in that one connection (one consistent generation for every page), and the connection is closed at once.
Later requests are served from memory until `os.stat` of the path shows another file. The path is never resolved to
its target: an audience's file (issue 18.4) or a symlink switched in atomically are followed the same way.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# What the pages read, one query per name, all in one read-only connection. Tables are read as published: the
# dashboard selects rows, it never recomputes a KPI.
QUERIES: dict[str, str] = {
    "publication": "select * from main.publication",
    "kpi_period": "select grain, period_start, period_end, channel, segment, kpi, numerator, denominator, value, n, "
                  "is_low_sample from kpi.kpi_period order by kpi, grain, period_start",
    "journey": "select * from kpi.kpi_journey_stage order by month_start, journey_stage_order, journey_stage",
    # every column the file has: an audience's file may leave some out (access/audiences.yml)
    "alerts": "select * from cx.cx_detractor_alerts order by due_at, alert_id",
    "pareto": "select * from cx.cx_issue_pareto order by issue_type, occurrences desc, issue",
    "delivery": "select * from cx.cx_delivery_vs_satisfaction order by survey_type, delay_bucket",
    "reviews": "select * from cx.cx_reviews_by_source_location order by grain, period_start, review_source, location",
    "targets": "select * from kpi.kpi_vs_target order by kpi, grain, period_start, segment, channel",
    "key_drivers": "select * from cx.cx_key_drivers order by score, period_grain, period_start, importance_rank",
    # how fresh each source is (cxw/freshness.py): the header's "as of"
    "freshness": "select * from main.publication_freshness order by source",
}

# The scores cx.cx_key_drivers explains (cxw/analytics/key_drivers.py), in the dashboard's order.
DRIVER_SCORES = ("nps", "csat", "review_rating")


class PublishedFileMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Snapshot:
    """Everything the pages show, read from one generation of the published file."""

    path: str
    key: tuple
    frames: dict[str, pd.DataFrame] = field(repr=False)
    missing: tuple[str, ...] = ()  # queries whose table the file does not have

    @property
    def generation_id(self) -> str | None:
        pub = self.frames.get("publication")
        return None if pub is None or pub.empty else str(pub.iloc[0]["generation_id"])

    @property
    def publication(self) -> dict:
        pub = self.frames.get("publication")
        return {} if pub is None or pub.empty else pub.iloc[0].to_dict()

    def frame(self, name: str) -> pd.DataFrame | None:
        return self.frames.get(name)


def _stat_key(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _alerts_with_contact_ids(con, tables: set[str]) -> str | None:
    """The alert queue with the CRM contact id / ERP partner id of each alert's person, where the file has them
    (an agent needs them to act; the cx_agent audience reads them for the alerts' persons only)."""
    if "core.dim_customers" not in tables:
        return None
    cols = {c for c, in con.execute("select column_name from information_schema.columns where table_schema = 'core' "
                                    "and table_name = 'dim_customers'").fetchall()}
    alert_cols = {c for c, in con.execute("select column_name from information_schema.columns where table_schema = "
                                          "'cx' and table_name = 'cx_detractor_alerts'").fetchall()}
    ids = [c for c in ("hubspot_contact_id", "odoo_partner_id") if c in cols and c not in alert_cols]
    if not ids or "person_sk" not in cols or "person_sk" not in alert_cols:
        return None
    return (f"select a.*, {', '.join('c.' + c for c in ids)} from cx.cx_detractor_alerts a "
            "left join core.dim_customers c using (person_sk) order by a.due_at, a.alert_id")


def read_snapshot(path: str, key: tuple) -> Snapshot:
    import duckdb

    con = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
    try:
        tables = {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        frames, missing = {}, []
        for name, sql in QUERIES.items():
            table = sql.split(" from ", 1)[1].split()[0]
            if table not in tables:
                missing.append(name)
                continue
            if name == "alerts":
                sql = _alerts_with_contact_ids(con, tables) or sql
            frames[name] = con.execute(sql).df()
    finally:
        con.close()
    return Snapshot(path=path, key=key, frames=frames, missing=tuple(missing))


def as_of_text(snap: Snapshot) -> str:
    """The header's freshness line: "as of <data interval end>" (+ "partial day" when it falls inside a day: an
    hourly run's KPIs of that day cover the hours loaded so far) and each source's latest event time, as published
    (main.publication_freshness). A generation without the table: the data interval end alone."""
    as_of = snap.publication.get("data_interval_end")
    f = snap.frame("freshness")
    if f is None or f.empty:
        return f"as of {as_of}"
    partial = bool(f.is_partial_day.any())
    parts = [f"as of {f.as_of.iloc[0] or as_of}" + (" (partial day)" if partial else "")]
    for row in f.itertuples():
        if pd.notna(row.max_event_at):
            parts.append(f"{row.source} to {pd.Timestamp(row.max_event_at):%Y-%m-%d %H:%M} UTC")
    return " · ".join(parts)


def latest_targets(snap: Snapshot, channel: str = "all") -> pd.DataFrame | None:
    """kpi.kpi_vs_target rows of the latest period per KPI (segment 'all', the given channel): the latest month, or
    the window row for a KPI that has no month row. None when the file does not hold the table. Rows as published."""
    t = snap.frame("targets")
    if t is None:
        return None
    t = t[(t.segment == "all") & (t.channel == channel)]
    t = t.assign(_month=(t.grain == "month")).sort_values(["kpi", "_month", "period_start"],
                                                          ascending=[True, False, False])
    return t.drop_duplicates("kpi").drop(columns="_month").reset_index(drop=True)


def latest_key_drivers(snap: Snapshot) -> dict[str, pd.DataFrame] | None:
    """cx.cx_key_drivers per score (DRIVER_SCORES): the drivers of the latest quarter that has rows for that score,
    else of the whole window, by importance rank; an empty frame for a score without rows (too few responses).
    None when the file does not hold the table. Rows as published."""
    k = snap.frame("key_drivers")
    if k is None:
        return None
    out = {}
    for score in DRIVER_SCORES:
        rows = k[k.score == score]
        quarters = rows[rows.period_grain == "quarter"]
        if not quarters.empty:
            rows = quarters[quarters.period_start == quarters.period_start.max()]
        else:
            rows = rows[rows.period_grain == "window"]
        out[score] = rows.sort_values(["importance_rank", "driver"]).reset_index(drop=True)
    return out


class PublishedFile:
    """The published file at ``path``; :meth:`snapshot` returns the generation it holds now."""

    def __init__(self, path: str | Path):
        self.path = os.path.abspath(os.fspath(path))
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self.opens = 0  # how often a generation was read (tests check a new generation is read once)

    def snapshot(self) -> Snapshot:
        with self._lock:  # one open at a time: DuckDB caches database instances by path within a process
            for _ in range(5):
                try:
                    key = _stat_key(self.path)
                except FileNotFoundError:
                    raise PublishedFileMissing(f"no published file at {self.path} yet (run ./cx demo or ./cx run)") from None
                if self._snap is not None and self._snap.key == key:
                    return self._snap
                snap = read_snapshot(self.path, key)
                self.opens += 1
                if _stat_key(self.path) == key:  # not switched while it was read: the data is of that file
                    self._snap = snap
                    return snap
            raise RuntimeError(f"{self.path} kept changing while it was read")
