"""The incremental GA4 evidence of the identity graph (int_ga4_identity_pairs, delete+insert on export_date) and the
identity models reading it equal a --full-refresh build, and an unchanged export day is not read again.

On the hand-made raw fixture (tests/dbt/raw_fixture.py), building only `+cx_identity_link_audit
+cx_identity_coverage` (the identity models, their staging): 1. the second loads arrive (2025-03-01 re-delivered with a
login, a new day); 2. a new export day arrives with a browser shared by two persons, and a whole export day leaves raw
(a dropped load); each time the incremental tables equal a full refresh by fingerprint (count + sum of row hashes,
as the bench's check); 3. stale stored rows of an export day whose load is current are kept (the day is not
recomputed: the run reads only changed days), while a stored day with another load and a missing day are repaired.
"""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env, fingerprint  # noqa: E402

PAIRS = "intermediate.int_ga4_identity_pairs"
TABLES = [PAIRS, "intermediate.int_identity_links", "intermediate.int_identity_conflicts",
          "cx.cx_identity_link_audit", "cx.cx_identity_coverage"]
BUILD = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
         "--select", "+cx_identity_link_audit", "+cx_identity_coverage"]
L3 = "ga4-20250325T000000-cccccccc"


def _fps(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: fingerprint(con, t) for t in TABLES}
    finally:
        con.close()


def _incremental_equals_full_refresh(db: Path, env: dict) -> dict:
    _dbt(env, *BUILD)
    incremental = _fps(db)
    _dbt(env, *BUILD, "--full-refresh")
    assert incremental == _fps(db)
    return incremental


def _add_day(con, export_date: str, events: list[tuple[str, str | None]]) -> None:
    """A new load L3 bringing export day ``export_date``: one page view per (user_pseudo_id, user_id)."""
    for seq, (upid, uid) in enumerate(events):
        con.execute(
            "insert into raw_ga4.events (event_date, event_timestamp, event_name, event_params, "
            "event_bundle_sequence_id, user_id, user_pseudo_id, _export_date, _load_id, _extracted_at, _record_seq) "
            f"values (?, ?, 'page_view', [], ?, ?, ?, ?, '{L3}', timestamp '2025-03-25 00:00:00', ?)",
            [export_date, str(1741348800000000 + seq * 1_000_000), f"l3-{seq}", uid, upid, export_date, seq])


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity_incremental")
    db = tmp / "build.duckdb"
    raw_fixture.build(db, boundary_rows=True)
    return tmp, db, _env(tmp, db)


def test_second_loads_incremental_equals_full_refresh(fixture_db):
    tmp, db, env = fixture_db
    con = duckdb.connect(str(db))
    held = raw_fixture.hold_back_second_loads(con)
    con.close()
    _dbt(env, *BUILD)
    before = _fps(db)
    con = duckdb.connect(str(db))
    raw_fixture.restore_held_loads(con, held)
    con.close()
    after = _incremental_equals_full_refresh(db, env)
    # the re-delivered 2025-03-01 brings the login of u1 (user_id 1): the day's pairs changed
    assert after[PAIRS] != before[PAIRS] and after["intermediate.int_identity_links"] != \
        before["intermediate.int_identity_links"]


def test_new_day_and_vanished_day_incremental_equals_full_refresh(fixture_db):
    tmp, db, env = fixture_db
    con = duckdb.connect(str(db))
    # a new day: browser s9 used by partner 1 and by partner 2 (a shared browser: a conflict), an anonymous one
    _add_day(con, "20250307", [("s9", "1"), ("s9", "2"), ("anon9", None)])
    # every event of 2025-03-05 leaves raw (its load dropped by retention)
    con.execute("delete from raw_ga4.events where _export_date = '20250305'")
    con.close()
    before = _fps(db)
    after = _incremental_equals_full_refresh(db, env)
    assert after[PAIRS] != before[PAIRS]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(f"select count(*) from {PAIRS} where export_date = '2025-03-05'").fetchone()[0] == 0
    assert con.execute("select count(*) from intermediate.int_identity_conflicts "
                       "where conflict_type = 'ga4_pseudo_id_multiple_persons' and source_id = 's9'").fetchone()[0] == 1
    con.close()


def test_only_changed_days_are_recomputed(fixture_db):
    tmp, db, env = fixture_db
    full = _fps(db)
    con = duckdb.connect(str(db))
    days = [d for (d,) in con.execute(f"select distinct export_date from {PAIRS} order by 1").fetchall()]
    assert len(days) >= 3
    kept, replaced, missing = days[0], days[1], days[2]
    others = f"(select * from {PAIRS} where export_date <> '{kept}')"
    others_full = fingerprint(con, others)
    # an unchanged day (its stored load is the current one): a stale value is NOT rewritten - the day is not read
    con.execute(f"update {PAIRS} set _extracted_at = timestamp '2000-01-01' where export_date = ?", [kept])
    # a stored day with another load than the current one is recomputed, a missing day is built again
    con.execute(f"update {PAIRS} set _load_id = 'ga4-old-load', user_id = 'stale' where export_date = ?", [replaced])
    con.execute(f"delete from {PAIRS} where export_date = ?", [missing])
    assert fingerprint(con, others) != others_full
    con.close()
    _dbt(env, *BUILD)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(f"select count(*) from {PAIRS} where export_date = ? and _extracted_at <> '2000-01-01'",
                       [kept]).fetchone()[0] == 0
    assert fingerprint(con, others) == others_full
    con.close()
    _dbt(env, *BUILD, "--full-refresh")
    assert _fps(db) == full
