"""Which GA4 delivery of an export day staging keeps (issue 20, `ga4_delivery_key` in
dbt_project/macros/incremental_staging.sql): the daily table (`events_YYYYMMDD`, the whole day) wins over every
intraday load of the day (`events_intraday_YYYYMMDD`, the day so far), also one that lands after it; a day with only
an intraday table is staged from it.

The cheap, focused form of the last step of tests/dbt/test_ga4_intraday.py (that one generates the demo company four
times and runs the real extractor): the hand-made raw fixture (tests/dbt/raw_fixture.py), real dbt on the three GA4
staging models."""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env  # noqa: E402

SELECT = ["build", "--select", "base_ga4__events", "base_ga4__events_typed", "stg_ga4__events",
          "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious"]
DAILY = raw_fixture.L2.format(src="ga4")           # the fixture's latest delivery of 2025-03-01 (daily table)
LATE_INTRADAY = "ga4-20250325T000000-cccccccc"      # an intraday load of 2025-03-01 landing after it


def test_an_intraday_load_landing_after_the_daily_table_never_replaces_it_and_an_intraday_only_day_is_staged(
        tmp_path):
    db = tmp_path / "build.duckdb"
    raw_fixture.build(db)
    env = _env(tmp_path, db)
    con = duckdb.connect(str(db))
    try:   # the loader's `_export_table` column: every fixture load came from the daily tables
        con.execute("alter table raw_ga4.events add column _export_table varchar")
        con.execute("update raw_ga4.events set _export_table = 'events_' || _export_date")
    finally:
        con.close()
    _dbt(env, *SELECT)

    def staged(sql: str) -> list[tuple]:
        c = duckdb.connect(str(db), read_only=True)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    day = "from staging.stg_ga4__events where export_date = '20250301'"
    assert staged(f"select distinct _load_id {day}") == [(DAILY,)]
    [(n_day,)] = staged(f"select count(*) {day}")
    [(n_all,)] = staged("select count(*) from staging.stg_ga4__events")

    con = duckdb.connect(str(db))
    try:
        # a late intraday table of 2025-03-01 (two rows of the day: a partial day), then a new day (another visitor's
        # two events six days later) that only an intraday table holds
        late = ("select * replace ({lid!r} as _load_id, timestamp '2025-03-25 00:00:00' as _extracted_at, "
                "{exp!r} as _export_date, {table!r} as _export_table) from raw_ga4.events "
                "where _load_id = {src!r} and _export_date = '20250301' and _record_seq < 2")
        con.execute("insert into raw_ga4.events " + late.format(
            lid=LATE_INTRADAY, exp="20250301", table="events_intraday_20250301", src=DAILY))
        con.execute(f"""
            insert into raw_ga4.events
            select * replace ('20250307' as event_date, cast(cast(event_timestamp as bigint) + {6 * 86400 * 10**6}
                              as varchar) as event_timestamp, 'u7' as user_pseudo_id,
                              'b-intraday-' || cast(_record_seq as varchar) as event_bundle_sequence_id,
                              '{LATE_INTRADAY}' as _load_id,
                              timestamp '2025-03-25 00:00:00' as _extracted_at, _record_seq + 2 as _record_seq,
                              '20250307' as _export_date,
                              'events_intraday_20250307' as _export_table)
            from raw_ga4.events where _load_id = '{DAILY}' and _export_date = '20250301' and _record_seq < 2""")
        assert con.execute(f"select count(*) from raw_ga4.events where _load_id = '{LATE_INTRADAY}'").fetchone() \
            == (4,)
    finally:
        con.close()
    _dbt(env, *SELECT)

    # the daily table of 2025-03-01 stays the day's current delivery, whole
    assert staged(f"select distinct _load_id {day}") == [(DAILY,)]
    assert staged(f"select count(*) {day}") == [(n_day,)]
    # the intraday-only day is staged from its intraday table
    assert staged("select distinct _load_id from staging.stg_ga4__events "
                  "where export_date = '20250307'") == [(LATE_INTRADAY,)]
    assert staged("select count(*) from staging.stg_ga4__events") == [(n_all + 2,)]
