"""The dashboard's reader of the published file (cxw_dashboard/published.py) on real files published by
`cxw.publish`: a generation is read once, a new generation on the next request, the file is never held open, and a
missing file is reported, not crashed on."""

from __future__ import annotations

import os

import duckdb
import pandas as pd
import pytest

from cxw_dashboard.published import PublishedFile, PublishedFileMissing


@pytest.fixture
def home(empty_build_db):
    p, con = empty_build_db
    con.execute("create schema kpi")
    con.execute("create table kpi.kpi_period as select 'window' as grain, date '2025-01-01' as period_start, "
                "date '2025-02-01' as period_end, 'all' as channel, 'all' as segment, 'nps' as kpi, "
                "4.0 as numerator, 10.0 as denominator, 40.0 as value, 10::bigint as n, true as is_low_sample")
    con.close()
    return p


def _set_nps(p, value: float) -> None:
    con = duckdb.connect(str(p.build_db))
    con.execute("update kpi.kpi_period set value = ?", [value])
    con.close()


def _nps(snap) -> float:
    return float(snap.frame("kpi_period").set_index("kpi").loc["nps", "value"])


def _held(path) -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [link for link in links if link.startswith(str(path.parent))]


def test_a_generation_is_read_once_and_a_new_generation_on_the_next_request(home):
    from cxw.publish import publish

    first = publish("run-1", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    snap = reader.snapshot()
    assert snap.generation_id == first["generation_id"] and _nps(snap) == 40.0
    assert reader.snapshot() is snap and reader.opens == 1  # unchanged file: served from memory
    _set_nps(home, 55.5)
    second = publish("run-2", "2025-01-01", "2025-02-01")
    snap2 = reader.snapshot()
    assert snap2.generation_id == second["generation_id"] != first["generation_id"]
    assert _nps(snap2) == 55.5 and reader.opens == 2


def test_the_reader_keeps_no_descriptor_on_the_published_file(home):
    from cxw.publish import publish

    publish("run-1", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    reader.snapshot()
    assert _held(home.published_db) == []
    assert _held(home.generations_dir / "x") == []


def test_a_rollback_to_an_older_generation_is_followed_too(home):
    from cxw.publish import publish, rollback

    first = publish("run-1", "2025-01-01", "2025-02-01")
    _set_nps(home, 12.0)
    publish("run-2", "2025-01-01", "2025-02-01")
    reader = PublishedFile(home.published_db)
    assert _nps(reader.snapshot()) == 12.0
    rollback(first["generation_id"])
    snap = reader.snapshot()
    assert snap.generation_id == first["generation_id"] and _nps(snap) == 40.0


def test_tables_the_file_lacks_are_reported_missing_not_crashed_on(home):
    from cxw.publish import publish

    publish("run-1", "2025-01-01", "2025-02-01")
    snap = PublishedFile(home.published_db).snapshot()
    assert "alerts" in snap.missing and snap.frame("alerts") is None and "kpi_period" not in snap.missing


def test_no_published_file_yet_says_where_it_looks(tmp_path):
    with pytest.raises(PublishedFileMissing, match=str(tmp_path / "nothing.duckdb")):
        PublishedFile(tmp_path / "nothing.duckdb").snapshot()


# --- the readers of the Targets and "What drives the score" panels (issue 19) ----------------------------------------

def _sql(path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


TARGET_COLS = ["kpi", "grain", "period_start", "value", "n", "target_value", "is_target_met", "benchmark_value",
               "benchmark_source", "benchmark_as_of", "is_breach", "target_owner_role"]


def _rows(df, cols) -> list[tuple]:
    return [tuple(None if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)
                  else v.date() if isinstance(v, pd.Timestamp) else v.item() if hasattr(v, "item") else v
                  for v in row) for row in df[cols].itertuples(index=False)]


def test_targets_panel_reads_each_kpis_latest_period_as_sql_on_the_published_file_gives(published_home):
    from cxw_dashboard.published import latest_targets

    path = published_home / "published" / "cx_warehouse.duckdb"
    shown = latest_targets(PublishedFile(path).snapshot())
    expected = _sql(path, f"""
        select {', '.join(TARGET_COLS)} from kpi.kpi_vs_target where segment = 'all' and channel = 'all'
        qualify row_number() over (partition by kpi order by grain = 'month' desc, period_start desc) = 1
        order by kpi""")
    assert expected, "the fixture publishes no target or benchmark: the panel would prove nothing"
    assert any(r[5] is not None for r in expected) and any(r[7] is not None for r in expected)
    assert _rows(shown, TARGET_COLS) == expected


def test_key_drivers_panel_reads_the_latest_quarter_else_the_window_per_score(home):
    from cxw.publish import publish
    from cxw_dashboard.published import DRIVER_SCORES, latest_key_drivers

    con = duckdb.connect(str(home.build_db))
    con.execute("create schema cx")
    con.execute("""create table cx.cx_key_drivers as select score, period_grain, period_start, driver,
        importance_share::double as importance_share, ci_low::double as ci_low, ci_high::double as ci_high,
        importance_rank::bigint as importance_rank, n_responses::bigint as n_responses from (values
        ('nps', 'quarter', date '2025-01-01', 'delay_days', 0.6, 0.4, 0.8, 1, 150),
        ('nps', 'quarter', date '2025-01-01', 'ticket_count', 0.4, 0.2, 0.6, 2, 150),
        ('nps', 'quarter', date '2025-04-01', 'ticket_count', 0.7, 0.5, 0.9, 1, 120),
        ('nps', 'quarter', date '2025-04-01', 'delay_days', 0.3, 0.1, 0.5, 2, 120),
        ('nps', 'window', date '2025-01-01', 'delay_days', 0.55, 0.4, 0.7, 1, 270),
        ('csat', 'window', date '2025-01-01', 'channel', 1.0, 1.0, 1.0, 1, 101))
        as t(score, period_grain, period_start, driver, importance_share, ci_low, ci_high, importance_rank,
             n_responses)""")
    con.close()
    publish("run-1", "2025-01-01", "2025-05-01")
    shown = latest_key_drivers(PublishedFile(home.published_db).snapshot())
    cols = ["score", "period_grain", "period_start", "driver", "importance_share", "ci_low", "ci_high",
            "n_responses"]
    for score in DRIVER_SCORES:
        expected = _sql(home.published_db, f"""
            with latest as (select score, period_grain, max(period_start) as period_start from cx.cx_key_drivers
                            where score = '{score}' group by 1, 2
                            qualify row_number() over (order by period_grain = 'quarter' desc) = 1)
            select {', '.join(cols)} from cx.cx_key_drivers join latest using (score, period_grain, period_start)
            order by importance_rank""")
        assert _rows(shown[score], cols) == expected, score
    assert list(shown["nps"].driver) == ["ticket_count", "delay_days"]  # the latest quarter, by rank
    assert shown["review_rating"].empty


def test_the_key_drivers_panel_says_through_which_day_its_responses_run(home):
    """Issue 20.1 ("as of"): each score's drivers name the last day of responses they saw (period_end is exclusive),
    and a quarter that is not over yet says so: the analyses can be older than the KPIs beside them."""
    from cxw.publish import publish
    from cxw_dashboard.app import panel_drivers

    from tests.dashboard.test_analysis_pages import _ids

    con = duckdb.connect(str(home.build_db))
    con.execute("create schema cx")
    con.execute("""create table cx.cx_key_drivers as select score, period_grain, period_start, period_end, driver,
        importance_share::double as importance_share, ci_low::double as ci_low, ci_high::double as ci_high,
        importance_rank::bigint as importance_rank, coefficient::double as coefficient, direction,
        r_squared::double as r_squared, n_responses::bigint as n_responses from (values
        ('nps', 'quarter', date '2025-04-01', date '2025-05-16', 'delay_days', 0.7, 0.5, 0.9, 1, -0.3, 'lower', 0.2, 120),
        ('csat', 'window', date '2025-01-03', date '2025-05-16', 'channel', 1.0, 1.0, 1.0, 1, 0.1, 'higher', 0.1, 101),
        ('review_rating', 'quarter', date '2025-01-01', date '2025-04-01', 'stars', 1.0, 1.0, 1.0, 1, 0.5, 'higher',
         0.3, 80))
        as t(score, period_grain, period_start, period_end, driver, importance_share, ci_low, ci_high,
             importance_rank, coefficient, direction, r_squared, n_responses)""")
    con.close()
    publish("run-1", "2025-05-15", "2025-05-16")
    ids = _ids(panel_drivers(PublishedFile(home.published_db).snapshot()))
    shown = {k: v.get("children") for k, v in ids.items() if k.startswith("drivers-through-")}
    assert shown == {
        "drivers-through-nps": "Responses through 2025-05-15 (the quarter so far; it ends 2025-06-30).",
        "drivers-through-csat": "Responses through 2025-05-15.",
        "drivers-through-review_rating": "Responses through 2025-03-31."}


def test_an_empty_key_drivers_table_gives_an_empty_frame_per_score(published_home):
    from cxw_dashboard.published import DRIVER_SCORES, latest_key_drivers

    path = published_home / "published" / "cx_warehouse.duckdb"
    count = _sql(path, "select count(*) from cx.cx_key_drivers")[0][0]
    assert count == 0, "the raw fixture has too few responses for the analysis: this test needs its empty table"
    shown = latest_key_drivers(PublishedFile(path).snapshot())
    assert set(shown) == set(DRIVER_SCORES) and all(f.empty for f in shown.values())


def test_the_panels_readers_say_none_when_the_file_lacks_their_tables(home):
    from cxw.publish import publish
    from cxw_dashboard.published import latest_key_drivers, latest_targets

    publish("run-1", "2025-01-01", "2025-02-01")
    snap = PublishedFile(home.published_db).snapshot()
    assert {"targets", "key_drivers"} <= set(snap.missing)
    assert latest_targets(snap) is None and latest_key_drivers(snap) is None


def test_the_header_says_as_of_and_each_sources_freshness_for_an_hourly_generation(home):
    """An hourly run's generation (its interval ends inside a day) records per source the latest event time staged
    (main.publication_freshness, cxw/freshness.py); the header shows "as of" and that
    the day is partial."""
    from cxw.publish import publish
    from cxw_dashboard.published import as_of_text

    con = duckdb.connect(str(home.build_db))
    con.execute("create schema staging")
    con.execute("create table staging.stg_ga4__events as select timestamp '2025-05-01 13:58:00' as event_at, "
                "timestamptz '2025-05-01 14:02:00+00' as _extracted_at")
    con.execute("create table staging.stg_hubspot__tickets as select timestamp '2025-05-01 13:40:00' as updated_at, "
                "timestamptz '2025-05-01 14:01:00+00' as _extracted_at")
    con.close()
    rep = publish("run-h", "2025-05-01T13:00:00+00:00", "2025-05-01T14:00:00+00:00")
    assert rep["status"] == "published", rep
    snap = PublishedFile(home.published_db).snapshot()
    f = snap.frame("freshness").set_index("source")
    assert list(f.index) == ["ga4", "hubspot"]
    assert f.loc["ga4", "max_event_at"] == pd.Timestamp("2025-05-01 13:58:00")
    assert f.loc["hubspot", "loaded_at"] == pd.Timestamp("2025-05-01 14:01:00")
    assert f.is_partial_day.all()
    text = as_of_text(snap)
    assert text.startswith("as of 2025-05-01T14:00:00+00:00 (partial day)"), text
    assert "ga4 to 2025-05-01 13:58 UTC" in text and "hubspot to 2025-05-01 13:40 UTC" in text
