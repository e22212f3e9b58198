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
    # the analysis pages (issue 19; cxw_dashboard/analyses.py): aggregate tables, read as published
    "clv_calibration": "select * from cx.cx_clv_calibration order by bucket_order",
    "topics": "select * from cx.cx_learned_topics order by share_of_feedback desc, topic_key",
    "topic_pareto": "select * from cx.cx_learned_topic_pareto order by source, rank_by_frequency, topic_key",
    "identity_coverage": "select * from cx.cx_identity_coverage order by source, outcome, rule",
}

# Aggregates computed in the same read-only connection, for tables whose rows are persons or source records: only the
# aggregate reaches the dashboard's memory (no person_sk, no record id). name -> (table, columns it needs, SQL); a
# file without the table or one of the columns (an audience may leave columns out) has the name in `missing`.
# The CLV per segment groups by the person's current segment (core.dim_customers.segment) where the file has it.
_CLV_STATS = """count(*) as persons, count(*) filter (where p.frequency > 0) as repeat_buyers,
    avg(p.p_alive) as p_alive_mean, count(*) filter (where p.p_alive >= 0.5) as persons_p_alive_ge_half,
    sum(p.expected_purchases_12m) as expected_purchases_12m_sum, sum(p.expected_value_12m) as expected_value_12m_sum,
    avg(p.expected_value_12m) as expected_value_12m_mean,
    quantile_cont(p.expected_value_12m, 0.1) as expected_value_12m_p10,
    quantile_cont(p.expected_value_12m, 0.25) as expected_value_12m_p25,
    quantile_cont(p.expected_value_12m, 0.5) as expected_value_12m_median,
    quantile_cont(p.expected_value_12m, 0.75) as expected_value_12m_p75,
    quantile_cont(p.expected_value_12m, 0.9) as expected_value_12m_p90, max(p.model_fit_date) as model_fit_date"""
CLV_COLUMNS = ("person_sk", "frequency", "p_alive", "expected_purchases_12m", "expected_value_12m", "model_fit_date")
AGGREGATES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "clv_segments": ("cx.cx_customer_clv_predicted", CLV_COLUMNS,
                     f"select 'all' as segment, {_CLV_STATS} from cx.cx_customer_clv_predicted p"),
    "clv_p_alive": ("cx.cx_customer_clv_predicted", CLV_COLUMNS, """
        select least(floor(p_alive * 10), 9)::int as p_alive_decile, count(*) as persons,
               sum(expected_value_12m) as expected_value_12m_sum
        from cx.cx_customer_clv_predicted group by 1 order by 1"""),
    "identity_rules": ("cx.cx_identity_link_audit", ("source", "rule", "has_conflict"), """
        select source, rule, count(*) as links, count(*) filter (where has_conflict) as links_with_conflict
        from cx.cx_identity_link_audit group by 1, 2 order by 1, links desc, 2"""),
    "identity_conflicts": ("cx.cx_identity_conflict_audit",
                           ("conflict_type", "source", "resolution", "winning_rule", "losing_rule", "person_sk"), """
        select conflict_type, source, resolution, winning_rule, losing_rule, count(*) as records,
               count(*) filter (where person_sk is not null) as records_linked
        from cx.cx_identity_conflict_audit group by all order by records desc, conflict_type, source, resolution"""),
}
_CLV_BY_SEGMENT = f"""select case when grouping(c.segment) = 1 then 'all' else coalesce(c.segment, 'unknown') end
    as segment, {_CLV_STATS} from cx.cx_customer_clv_predicted p left join core.dim_customers c using (person_sk)
    group by grouping sets ((c.segment), ()) order by grouping(c.segment) desc, persons desc, 1"""

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


def _columns(con, table: str) -> set[str]:
    schema, name = table.split(".")
    return {c for c, in con.execute("select column_name from information_schema.columns where table_schema = ? and "
                                    "table_name = ?", [schema, name]).fetchall()}


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
        for name, (table, needs, sql) in AGGREGATES.items():
            if table not in tables or not set(needs) <= _columns(con, table):
                missing.append(name)
                continue
            if name == "clv_segments" and "core.dim_customers" in tables and {"person_sk", "segment"} <= _columns(
                    con, "core.dim_customers"):
                sql = _CLV_BY_SEGMENT
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


# --- readers of the analysis pages (issue 19; cxw_dashboard/analyses.py) ---------------------------------------------

BREAKDOWNS = ("segment", "channel")  # kpi_period splits a KPI by one of them, the other being 'all'


def _breakdown(snap: Snapshot, period: str, by: str) -> pd.DataFrame | None:
    kp = snap.frame("kpi_period")
    if kp is None:
        return None
    other = "channel" if by == "segment" else "segment"
    rows = kp[(kp[by] != "all") & (kp[other] == "all")]
    if period == "window":
        return rows[rows.grain == "window"]
    return rows[(rows.grain == "month") & (pd.to_datetime(rows.period_start).dt.strftime("%Y-%m") == period)]


def breakdown_kpis(snap: Snapshot, period: str, by: str) -> list[str]:
    """The KPIs kpi_period splits by ``by`` ('segment' or 'channel') in the period ('window' or 'YYYY-MM')."""
    rows = _breakdown(snap, period, by)
    return [] if rows is None else sorted(set(rows.kpi))


def breakdown_rows(snap: Snapshot, kpi: str, period: str, by: str) -> pd.DataFrame | None:
    """kpi.kpi_period rows of ``kpi`` per segment (channel 'all') or per channel (segment 'all') of the period, as
    published (value, n, is_low_sample ...), ordered by the segment / channel code. None when the file has no
    kpi_period."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {BREAKDOWNS}")
    rows = _breakdown(snap, period, by)
    if rows is None:
        return None
    return rows[rows.kpi == kpi].sort_values(by).reset_index(drop=True)
