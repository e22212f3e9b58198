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
    "alerts": "select alert_id, alert_type, source, channel, score, comment, created_at, due_at, is_loop_closed, "
              "preceding_touchpoint_type from cx.cx_detractor_alerts order by due_at, alert_id",
    "pareto": "select * from cx.cx_issue_pareto order by issue_type, occurrences desc, issue",
    "delivery": "select * from cx.cx_delivery_vs_satisfaction order by survey_type, delay_bucket",
    "reviews": "select * from cx.cx_reviews_by_source_location order by grain, period_start, review_source, location",
}


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
            frames[name] = con.execute(sql).df()
    finally:
        con.close()
    return Snapshot(path=path, key=key, frames=frames, missing=tuple(missing))


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
