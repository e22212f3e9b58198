"""Issue 14: a GA4 export day re-delivered when it is older than var web_session_lookback_days still reaches
fct_web_sessions on an incremental run - a session that only the re-delivery has, and events it adds to a stored
session - and so fct_touchpoints and the web KPIs, equal to a --full-refresh build of a copy.

On the hand-made raw fixture (tests/dbt/raw_fixture.py): build everything; add a later export day (so 2025-03-01
falls out of the lookback) and build incrementally; then re-deliver 2025-03-01 with one more session and one more
event on session u1:100, build incrementally, and compare every table of staging, intermediate, core, kpi and cx
with a --full-refresh build. A second test starts from a build database whose fct_web_sessions predates the
first_export_load / last_export_load columns (an upgrade) and checks the next incremental run adds and fills them.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import BUILD_NO_TESTS, _dbt, _env  # noqa: E402
from test_staging_incremental import _assert_equals_full_refresh, _stg  # noqa: E402

L2_GA4 = raw_fixture.L2.format(src="ga4")
NEW_DAY = "ga4-20250322T000000-eeeeeeee"       # a later export day: 2025-03-01 is then weeks past the lookback
REDELIVERY = "ga4-20250325T000000-ffffffff"    # 2025-03-01 delivered again
US = 1_000_000


def _add_later_day(con) -> None:
    """Export day 2025-03-20: one session u5:500 (a copy of u4:400's event, 19 days later)."""
    con.execute(f"""
        insert into raw_ga4.events
        select * replace ('20250320' as event_date, cast(cast(event_timestamp as bigint) + {19 * 86400 * US} as varchar)
                          as event_timestamp, 'u5' as user_pseudo_id, 'b-new-day' as event_bundle_sequence_id,
                          '20250320' as _export_date, '{NEW_DAY}' as _load_id, timestamp '2025-03-22' as _extracted_at,
                          0 as _record_seq)
        from raw_ga4.events where _load_id = '{L2_GA4}' and user_pseudo_id = 'u4'""")


def _redeliver_old_day(con) -> None:
    """2025-03-01 again: its current delivery (L2), plus a new session u6:400 and a third page view on u1:100."""
    con.execute(f"""
        insert into raw_ga4.events
        select * replace ('{REDELIVERY}' as _load_id, timestamp '2025-03-25' as _extracted_at)
        from raw_ga4.events where _load_id = '{L2_GA4}' and _export_date = '20250301'""")
    con.execute(f"""
        insert into raw_ga4.events
        select * replace ('u6' as user_pseudo_id, 'b-extra-session' as event_bundle_sequence_id,
                          '{REDELIVERY}' as _load_id, 1000 as _record_seq)
        from raw_ga4.events where _load_id = '{L2_GA4}' and user_pseudo_id = 'u4'""")
    con.execute(f"""
        insert into raw_ga4.events
        select * replace (cast(cast(event_timestamp as bigint) + {3 * US} as varchar) as event_timestamp,
                          'b-extra-event' as event_bundle_sequence_id, '{REDELIVERY}' as _load_id, 1001 as _record_seq)
        from raw_ga4.events
        where _load_id = '{L2_GA4}' and user_pseudo_id = 'u1' and event_name = 'page_view'
        order by event_timestamp limit 1""")


def _raw(db: Path, fn) -> None:
    con = duckdb.connect(str(db))
    try:
        fn(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def built_once(tmp_path_factory):
    """Built, a later day added, built incrementally: once per module (two dbt builds), never changed afterwards."""
    tmp = tmp_path_factory.mktemp("web_sessions_built")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    env = _env(tmp, db)
    _dbt(env, *BUILD_NO_TESTS)
    _raw(db, _add_later_day)
    _dbt(env, *BUILD_NO_TESTS)
    return tmp


@pytest.fixture()
def built(built_once, tmp_path):
    """Each test changes the build database: it gets its own copy of :func:`built_once` (database and dbt target)."""
    work = tmp_path / "built"
    shutil.copytree(built_once, work)
    db = work / "build.duckdb"
    return work, db, _env(work, db)


SESSION_SQL = "select session_key, events, page_views from core.fct_web_sessions where user_pseudo_id in ('u1', 'u6')"


def test_a_redelivered_day_older_than_the_lookback_rebuilds_its_sessions_and_kpis(built):
    tmp, db, env = built
    assert _stg(db, "select count(*) from core.fct_web_sessions where session_date >= "
                    "(select max(session_date) - 3 from core.fct_web_sessions) "
                    "and session_date <= date '2025-03-02'") == [(0,)], "2025-03-01 is not older than the lookback"
    before = sorted(_stg(db, SESSION_SQL))
    assert before == [("u1:100", 5, 2)]

    _raw(db, _redeliver_old_day)
    _dbt(env, *BUILD_NO_TESTS)
    # the re-delivered session and event are in, without a full refresh
    assert sorted(_stg(db, SESSION_SQL)) == [("u1:100", 6, 3), ("u6:400", 1, 0)]
    assert _stg(db, "select count(*) from core.fct_touchpoints where source_record_id = 'u6:400'") == [(1,)]
    _assert_equals_full_refresh(tmp, db, "redelivered_old_day")


def test_a_build_database_from_before_the_delivery_columns_upgrades_on_its_next_run(built):
    tmp, db, env = built
    _raw(db, lambda con: con.execute("alter table core.fct_web_sessions drop column first_export_load; "
                                     "alter table core.fct_web_sessions drop column last_export_load"))
    _raw(db, _redeliver_old_day)
    _dbt(env, *BUILD_NO_TESTS)
    assert _stg(db, "select count(*) from core.fct_web_sessions where first_export_load is null "
                    "or last_export_load is null") == [(0,)]
    assert sorted(_stg(db, SESSION_SQL)) == [("u1:100", 6, 3), ("u6:400", 1, 0)]
    _assert_equals_full_refresh(tmp, db, "upgraded")
