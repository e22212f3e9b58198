"""Incremental marts equal a full refresh, and snapshots add no versions on a re-run without new data.

On the hand-made raw fixture (tests/dbt/raw_fixture.py):
1. Load split: build with only the first load of every source (L1) in the raw tables, add the second load (L2),
   run again incrementally; the incremental facts must equal a --full-refresh build by fingerprint
   (count + sum of row hashes, reliability.md).
2. Stale state: delete the newest rows of the incremental facts and make older rows stale (a person resolved
   later, a changed detail), run incrementally; again equal to the full refresh.
3. Snapshots: re-running `dbt snapshot` / the build with no new data adds no versions.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest

import dbt_cli

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402

INCREMENTAL = ["core.fct_touchpoints", "core.fct_web_sessions"]
SNAPSHOTS = ["intermediate.snap_odoo__res_partners", "intermediate.snap_hubspot__contacts"]
BUILD_NO_TESTS = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def _env(tmp: Path, db: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({
        "CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
    })
    return env


def _dbt(env: dict, *args: str) -> None:
    proc = dbt_cli.run(env, *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def fingerprint(con, table: str) -> tuple[int, int]:
    """count(*) and an order-independent sum of row hashes (not XOR: equal duplicate rows do not cancel)."""
    n, s = con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {table} as t").fetchone()
    return int(n), int(s)


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("marts_incremental")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    return tmp, db, _env(tmp, db)


def test_incremental_after_new_load_equals_full_refresh(fixture_db):
    tmp, db, env = fixture_db
    # hold back the second load of every source
    con = duckdb.connect(str(db))
    held = raw_fixture.hold_back_second_loads(con)
    con.close()
    assert held, "fixture has no second load"
    _dbt(env, *BUILD_NO_TESTS)

    con = duckdb.connect(str(db))
    before = {t: fingerprint(con, t) for t in INCREMENTAL}
    raw_fixture.restore_held_loads(con, held)
    con.close()

    _dbt(env, *BUILD_NO_TESTS)                       # incremental run over the new load
    con = duckdb.connect(str(db), read_only=True)
    incremental = {t: fingerprint(con, t) for t in INCREMENTAL}
    con.close()
    assert incremental != before, "the second load changed nothing - the test would prove nothing"

    _dbt(env, *BUILD_NO_TESTS, "--full-refresh", "--select", "fct_touchpoints", "fct_web_sessions")
    con = duckdb.connect(str(db), read_only=True)
    full = {t: fingerprint(con, t) for t in INCREMENTAL}
    con.close()
    assert incremental == full


def test_incremental_repairs_stale_and_missing_rows(fixture_db):
    tmp, db, env = fixture_db
    con = duckdb.connect(str(db))
    full = {t: fingerprint(con, t) for t in INCREMENTAL}
    # the newest rows were never built; an older row was built before its person was known / its detail changed
    con.execute("delete from core.fct_touchpoints where occurred_at >= "
                "(select max(occurred_at) - interval 1 day from core.fct_touchpoints)")
    # (row_hash is the hash of the row's content, so stale content comes with its own, different hash)
    con.execute("update core.fct_touchpoints set person_sk = '-1', row_hash = 'stale person' where touchpoint_key = "
                "(select min(touchpoint_key) from core.fct_touchpoints where person_sk <> '-1')")
    con.execute("update core.fct_touchpoints set detail = 'stale', row_hash = 'stale' where touchpoint_key = "
                "(select max(touchpoint_key) from core.fct_touchpoints)")
    con.execute("delete from core.fct_web_sessions where session_start_at >= "
                "(select max(session_start_at) from core.fct_web_sessions)")
    con.execute("update core.fct_web_sessions set person_sk = '-1' where session_key = "
                "(select min(session_key) from core.fct_web_sessions where person_sk <> '-1')")
    stale = {t: fingerprint(con, t) for t in INCREMENTAL}
    con.close()
    assert stale != full

    _dbt(env, "run", "--select", "fct_web_sessions", "fct_touchpoints")
    con = duckdb.connect(str(db), read_only=True)
    assert {t: fingerprint(con, t) for t in INCREMENTAL} == full
    con.close()


def test_snapshots_add_no_versions_without_new_data(fixture_db):
    tmp, db, env = fixture_db
    con = duckdb.connect(str(db), read_only=True)
    before = {t: fingerprint(con, t) for t in SNAPSHOTS}
    history = con.execute("select count(*) from core.dim_customers_history").fetchone()[0]
    con.close()
    assert all(n > 0 for n, _ in before.values())

    _dbt(env, "snapshot")
    _dbt(env, *BUILD_NO_TESTS, "--select", "+dim_customers_history")
    con = duckdb.connect(str(db), read_only=True)
    after = {t: fingerprint(con, t) for t in SNAPSHOTS}
    assert con.execute("select count(*) from core.dim_customers_history").fetchone()[0] == history
    # the first test built L1 before L2 arrived: partners whose write_date changed in L2 have a closed version
    assert con.execute("select count(*) from core.dim_customers_history where not is_current").fetchone()[0] >= 1
    con.close()
    assert after == before
