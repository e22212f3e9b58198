"""Edited and deleted reviews end in staging in their latest version (issue 14, item 2), end to end.

Each test runs the real pipeline pieces several times, as the daily DAG would: the demo company generated at the
run's data-interval end (what the review sites show then), the loopback DemoServer, the real Trustpilot and Google
extractors (default settings: a 90-day rolling re-read of Trustpilot creation time, a full re-read with a
`reviews__ids` snapshot every 7 days), the real loader and a real `dbt build` of the review staging models. The
subjects are picked from the generator's truth (seed 4, XS, review dirt rates raised so that every shape occurs),
never from the files.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

import dbt_cli

from conftest import HISTORY_START, FakeClock, run_kwargs
from test_reviews_extract import g_settings, t_settings

from cxw.loader import load_into_duckdb
from demo_company import generate
from demo_company.config import DEFAULT_DAYS, DEFAULT_START, SCALES, scaled_dirt
from demo_company.server import DemoServer
from demo_company.util import US_PER_DAY, us_to_dt
from demo_company.world import build_world
from extractors import google_reviews, trustpilot

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
SEED = 4
DIRT = {"review_late_edit_rate": 0.6, "review_deletion_rate": 0.3, "review_late_reply_rate": 0.5}
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def world():
    return build_world(SEED, SCALES["XS"], DEFAULT_START, DEFAULT_DAYS, scaled_dirt(DIRT))


def _us(d: datetime) -> int:
    return (d - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _day(us: int) -> datetime:
    """Midnight UTC of the day holding instant `us` (runs are daily, at the data-interval end)."""
    d = us_to_dt(us)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


class Pipeline:
    """Daily runs of the review extractors + loader + staging build, all state in one temporary home."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.dirs = {k: tmp / k for k in ("raw", "state", "deadletter")}
        for p in self.dirs.values():
            p.mkdir()
        self.db = tmp / "build.duckdb"
        self.end: datetime | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
        self.env.update({"CXW_HOME": str(tmp), "CXW_BUILD_DB": str(self.db), "DBT_TARGET_PATH": str(tmp / "target"),
                         "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                         "DO_NOT_TRACK": "1"})

    def run(self, end: datetime) -> dict:
        """One daily run for the data interval ending `end`; returns {source: [entities landed]}."""
        demo = self.tmp / f"demo-{end:%Y%m%d}"
        generate(demo, scale="XS", seed=SEED, as_of=end.strftime("%Y-%m-%dT%H:%M:%SZ"), dirt=DIRT, workers=1)
        clock = FakeClock()
        kw = run_kwargs(self.dirs, self.end or HISTORY_START, end)
        with DemoServer(demo, port=0, clock=clock, realism=False) as srv:
            tp = trustpilot.extract(settings=t_settings(srv, clock), **kw)
            g = google_reviews.extract(settings=g_settings(srv, clock), **kw)
        self.end = end
        load_into_duckdb(self.dirs["raw"], self.db)
        proc = dbt_cli.run(self.env, "build", "--select", "+stg_trustpilot__reviews", "+stg_google_reviews__reviews",
                           "--indirect-selection", "cautious", timeout=600)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        return {"trustpilot": [ld["entity"] for ld in tp["loads"]],
                "google_reviews": [ld["entity"] for ld in g["loads"]]}

    def staged(self, source: str, review_id: str) -> dict | None:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            cur = con.execute(f"select * from staging.stg_{source}__reviews where review_id = ?", [review_id])
            cols = [c[0] for c in cur.description]
            row = cur.fetchone()
            return dict(zip(cols, row)) if row else None
        finally:
            con.close()

    def snapshot_times(self, source: str) -> list:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return [r[0] for r in con.execute(f"select distinct _extracted_at from raw_{source}.reviews__ids "
                                              f"order by 1").fetchall()]
        finally:
            con.close()


FULL = ["reviews", "reviews__ids"]     # a full re-read lands the reviews and the id snapshot
ROLLING = ["reviews"]


def test_trustpilot_review_edited_60_days_later_counts_with_new_stars_after_the_next_run(world, tmp_path):
    edited = [r for r in world.reviews if r.source == "trustpilot" and not r.quarantine and not r.deleted_us
              and r.late_edit_us and 50 * US_PER_DAY <= r.late_edit_us - r.created_us <= 70 * US_PER_DAY]
    r = min(edited, key=lambda x: abs(x.late_edit_us - x.created_us - 60 * US_PER_DAY))
    before, after = r.stars_at(r.late_edit_us - 1), r.stars_at(r.late_edit_us)
    assert before != after
    t1 = _day(r.late_edit_us)
    p = Pipeline(tmp_path)
    assert p.run(t1)["trustpilot"] == FULL                       # first run: everything, as first written
    assert p.staged("trustpilot", r.rid)["rating"] == before
    assert p.run(t1 + DAY)["trustpilot"] == ROLLING              # the edit lands; no full re-read a day later
    row = p.staged("trustpilot", r.rid)
    assert row["rating"] == after and not row["is_deleted"]
    assert row["updated_at"] is not None


def test_trustpilot_review_edited_a_year_later_counts_after_the_next_full_reread(world, tmp_path):
    late = [r for r in world.reviews if r.source == "trustpilot" and not r.quarantine and r.late_edit_us
            and r.late_edit_us - r.created_us >= 365 * US_PER_DAY
            and not (r.deleted_us and r.deleted_us < r.late_edit_us + 8 * US_PER_DAY)]
    r = late[0]
    before, after = r.stars_at(r.late_edit_us - 1), r.stars_at(r.late_edit_us)
    t1 = _day(r.late_edit_us)
    p = Pipeline(tmp_path)
    assert p.run(t1)["trustpilot"] == FULL
    assert p.staged("trustpilot", r.rid)["rating"] == before
    # a day later: the rolling window (created in the last 90 days) does not reach a review written a year ago
    assert p.run(t1 + DAY)["trustpilot"] == ROLLING
    assert p.staged("trustpilot", r.rid)["rating"] == before
    # a week after the last full re-read: the whole business unit again, the latest version wins
    assert p.run(t1 + 7 * DAY)["trustpilot"] == FULL
    assert p.staged("trustpilot", r.rid)["rating"] == after


def test_deleted_reviews_disappear_after_the_next_full_reread(world, tmp_path):
    tp = [r for r in world.reviews if r.source == "trustpilot" and not r.quarantine and r.deleted_us]
    g = [r for r in world.reviews if r.source == "google" and not r.quarantine and r.deleted_us]
    a, b = next((a, b) for a in tp for b in g if abs(a.deleted_us - b.deleted_us) < 4 * US_PER_DAY)
    t1 = _day(min(a.deleted_us, b.deleted_us))
    p = Pipeline(tmp_path)
    assert p.run(t1) == {"trustpilot": FULL, "google_reviews": FULL}
    assert not p.staged("trustpilot", a.rid)["is_deleted"] and not p.staged("google_reviews", b.rid)["is_deleted"]
    # both gone from the sites a few days later; an incremental run cannot tell a deletion from no change
    assert p.run(t1 + 5 * DAY) == {"trustpilot": ROLLING, "google_reviews": ROLLING}
    assert not p.staged("trustpilot", a.rid)["is_deleted"] and not p.staged("google_reviews", b.rid)["is_deleted"]
    assert p.run(t1 + 7 * DAY) == {"trustpilot": FULL, "google_reviews": FULL}
    for source, rid in (("trustpilot", a.rid), ("google_reviews", b.rid)):
        row = p.staged(source, rid)
        assert row["is_deleted"], (source, rid)
        # detected by the newest snapshot (the first one after the review's last landing that misses it)
        assert row["deleted_detected_at"] == p.snapshot_times(source)[-1]
    # reviews still on the sites stay live
    live = [r for r in world.reviews if r.source == "trustpilot" and not r.quarantine and r.created_us < _us(t1)
            and not r.deleted_at(_us(t1 + 7 * DAY))]
    assert live and not any(p.staged("trustpilot", r.rid)["is_deleted"] for r in live)


def test_google_reply_rewritten_later_is_staged_after_the_next_run(world, tmp_path):
    g = [r for r in world.reviews if r.source == "google" and not r.quarantine and not r.deleted_us
         and r.reply_edit_us]
    r = g[0]
    t1 = _day(r.reply_edit_us)
    p = Pipeline(tmp_path)
    p.run(t1)
    row = p.staged("google_reviews", r.rid)
    assert row["reply_text"] == r.reply_text
    p.run(t1 + DAY)
    row = p.staged("google_reviews", r.rid)
    assert row["reply_text"] == r.reply_edit_text and row["rating"] == r.stars_at(r.reply_edit_us)
    assert row["reply_at"] == us_to_dt(r.reply_edit_us)  # naive UTC, as staging holds it
