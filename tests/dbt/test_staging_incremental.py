"""Incremental staging equals a full refresh: stg_ga4__events (delete+insert per export day),
stg_hubspot__email_events (delete+insert per key), and everything built on them (ledger, quarantine, marts).

On the hand-made raw fixture (tests/dbt/raw_fixture.py), one build database goes through incremental runs:
1. only the first load of every source (L1);
2. + the second load (L2: a re-delivered GA4 day with an exact duplicate, a later Odoo version, ...) and a third
   (L3: a new GA4 day, the re-delivered day delivered again with a late event, new / updated / stale HubSpot email
   events);
3. + a load that lands late with an id below the newest (a re-delivery of another GA4 day, an e-mail event
   version that wins on its timestamp and one that loses on its load id) - a load high-water mark would miss it;
4. - L3 removed from raw (the loader rebuilds a table when a load's files are gone): its new day and e-mail events
   must disappear, the re-delivered day and the updated event fall back to the earlier delivery / version.
After steps 2-4 every table of staging, intermediate, core, kpi and cx is compared by fingerprint (count + sum of
row hashes) with a `--full-refresh` build of a copy of the same database.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import BUILD_NO_TESTS, _dbt, _env, fingerprint  # noqa: E402

SCHEMAS = ("staging", "intermediate", "core", "kpi", "cx")
L3_GA4 = "ga4-20250325T000000-cccccccc"
L3_HUB = "hubspot-20250325T000000-cccccccc"
LATE_GA4 = "ga4-20250315T000000-dddddddd"     # lands last, sorts between L1 and L2
LATE_HUB = "hubspot-20250315T000000-dddddddd"
DAY_US = 86_400 * 1_000_000


def _fingerprints(db: Path) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS!r} order by 1").fetchall()
        return {t: fingerprint(con, t) for (t,) in tables}
    finally:
        con.close()


def _assert_equals_full_refresh(tmp: Path, db: Path, step: str) -> dict:
    copy = tmp / f"full_{step}.duckdb"
    (tmp / f"full_{step}").mkdir(exist_ok=True)
    shutil.copyfile(db, copy)
    _dbt(_env(tmp / f"full_{step}", copy), *BUILD_NO_TESTS, "--full-refresh")
    incremental, full = _fingerprints(db), _fingerprints(copy)
    assert set(incremental) == set(full)
    diff = {t: (incremental[t], full[t]) for t in full if incremental[t] != full[t]}
    assert not diff, f"step {step}: incremental differs from a full refresh in {sorted(diff)}"
    return incremental


def _stg(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("staging_incremental")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    return tmp, db, _env(tmp, db)


def test_incremental_staging_equals_full_refresh_through_new_late_and_removed_loads(build):
    tmp, db, env = build
    # 1. L1 only
    con = duckdb.connect(str(db))
    held = raw_fixture.hold_back_second_loads(con)
    con.close()
    _dbt(env, *BUILD_NO_TESTS)
    first = _fingerprints(db)

    # 2. L2 back, plus L3
    con = duckdb.connect(str(db))
    raw_fixture.restore_held_loads(con, held)
    # GA4 L3: a new export day (20250303: the 20250302 events a day later) and 20250301 delivered once more with a
    # late page view of session u1/100
    con.execute(f"""
        insert into raw_ga4.events by name
        select * replace (cast(cast(event_timestamp as bigint) + {DAY_US} as varchar) as event_timestamp,
                          '20250303' as event_date, '20250303' as _export_date, '{L3_GA4}' as _load_id,
                          timestamp '2025-03-25 00:00:00' as _extracted_at)
        from raw_ga4.events where _export_date = '20250302'""")
    con.execute(f"""
        insert into raw_ga4.events by name
        select * replace ('{L3_GA4}' as _load_id, timestamp '2025-03-25 00:00:00' as _extracted_at,
                          _record_seq + 100 as _record_seq)
        from raw_ga4.events where _export_date = '20250301' and _load_id like '%-bbbbbbbb'
        union all
        select * replace (cast(cast(event_timestamp as bigint) + 4000000 as varchar) as event_timestamp,
                          '{L3_GA4}' as _load_id, timestamp '2025-03-25 00:00:00' as _extracted_at,
                          1000 as _record_seq)
        from raw_ga4.events
        where _export_date = '20250301' and _load_id like '%-bbbbbbbb' and event_name = 'page_view'
            and user_pseudo_id = 'u1'
        qualify row_number() over (order by _record_seq) = 1""")
    # HubSpot e-mail events L3: a new event, a later version of ev0003 (wins), an older version of ev0001 (loses)
    con.execute(f"""
        insert into raw_hubspot.email_events by name
        select * replace (case when id = 'ev0002' then 'ev9001' else id end as id,
                          case id when 'ev0003' then created + 1000 when 'ev0001' then created - 1000
                                  else created + 5000 end as created,
                          case when id = 'ev0003' then true else filteredEvent end as filteredEvent,
                          '{L3_HUB}' as _load_id, timestamp '2025-03-25 00:00:00' as _extracted_at)
        from raw_hubspot.email_events where id in ('ev0001', 'ev0002', 'ev0003')""")
    con.close()
    _dbt(env, *BUILD_NO_TESTS)
    second = _assert_equals_full_refresh(tmp, db, "new_loads")
    assert second["staging.stg_ga4__events"] != first["staging.stg_ga4__events"]
    assert second["staging.stg_hubspot__email_events"] != first["staging.stg_hubspot__email_events"]
    assert _stg(db, "select distinct _load_id from staging.stg_ga4__events where export_date = '20250301'") \
        == [(L3_GA4,)]
    assert _stg(db, "select _load_id from staging.stg_hubspot__email_events where email_event_id = 'ev0003'") \
        == [(L3_HUB,)]

    # 3. a late-landing load whose id sorts below the newest
    con = duckdb.connect(str(db))
    con.execute(f"""
        insert into raw_ga4.events by name
        select * replace (cast(cast(event_timestamp as bigint) + 1000000 as varchar) as event_timestamp,
                          '{LATE_GA4}' as _load_id, timestamp '2025-03-15 00:00:00' as _extracted_at)
        from raw_ga4.events where _export_date = '20250302'""")
    # e-mail events: a later version of ev0005 (wins on its timestamp although its load sorts below L3) and a copy
    # of the stored ev0003 version with the same timestamp (loses on its load id)
    con.execute(f"""
        insert into raw_hubspot.email_events by name
        select * replace (created + 60000 as created, '{LATE_HUB}' as _load_id,
                          timestamp '2025-03-15 00:00:00' as _extracted_at)
        from raw_hubspot.email_events where id = 'ev0005' and _load_id like '%-aaaaaaaa'
        union all
        select * replace (false as filteredEvent, '{LATE_HUB}' as _load_id,
                          timestamp '2025-03-15 00:00:00' as _extracted_at)
        from raw_hubspot.email_events where id = 'ev0003' and _load_id = '{L3_HUB}'""")
    con.close()
    _dbt(env, *BUILD_NO_TESTS)
    third = _assert_equals_full_refresh(tmp, db, "late_load")
    assert third["staging.stg_ga4__events"] != second["staging.stg_ga4__events"]
    assert _stg(db, "select email_event_id, _load_id from staging.stg_hubspot__email_events "
                    "where email_event_id in ('ev0003', 'ev0005') order by 1") \
        == [("ev0003", L3_HUB), ("ev0005", LATE_HUB)]

    # 4. L3 leaves raw
    con = duckdb.connect(str(db))
    con.execute(f"delete from raw_ga4.events where _load_id = '{L3_GA4}'")
    con.execute(f"delete from raw_hubspot.email_events where _load_id = '{L3_HUB}'")
    con.close()
    _dbt(env, *BUILD_NO_TESTS)
    fourth = _assert_equals_full_refresh(tmp, db, "removed_load")
    assert _stg(db, "select count(*) from staging.stg_ga4__events where export_date = '20250303'") == [(0,)]
    assert _stg(db, "select count(*) from staging.stg_hubspot__email_events where email_event_id = 'ev9001'") \
        == [(0,)]
    assert fourth["staging.stg_hubspot__email_events"] != third["staging.stg_hubspot__email_events"]


def test_incremental_run_without_new_loads_changes_nothing(build):
    tmp, db, env = build
    before = _fingerprints(db)
    _dbt(env, *BUILD_NO_TESTS)
    assert _fingerprints(db) == before
