"""Issue 14, fct_web_sessions alone: an incremental run takes in a GA4 export day re-delivered when it is older than
var web_session_lookback_days (a session only the re-delivery has, an event it adds to a stored session).

The cheap, focused form of tests/dbt/test_web_sessions_redelivered_day.py (which builds the whole project three
times and compares every table with a full refresh): the same hand-made raw fixture and the same two raw changes,
real dbt building only `+fct_web_sessions` (the model and what it reads)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env  # noqa: E402
from test_staging_incremental import _stg  # noqa: E402
from test_web_sessions_redelivered_day import SESSION_SQL, _add_later_day, _raw, _redeliver_old_day  # noqa: E402

SELECT = ["build", "--select", "+fct_web_sessions", "--exclude-resource-type", "test",
          "--exclude-resource-type", "unit_test"]


def test_an_incremental_fct_web_sessions_takes_in_a_redelivered_day_older_than_the_lookback(tmp_path):
    db = tmp_path / "build.duckdb"
    raw_fixture.build(db)
    env = _env(tmp_path, db)
    _dbt(env, *SELECT)
    _raw(db, _add_later_day)
    _dbt(env, *SELECT)
    assert _stg(db, "select count(*) from core.fct_web_sessions where session_date >= "
                    "(select max(session_date) - 3 from core.fct_web_sessions) "
                    "and session_date <= date '2025-03-02'") == [(0,)], "2025-03-01 is not older than the lookback"
    assert sorted(_stg(db, SESSION_SQL)) == [("u1:100", 5, 2)]

    _raw(db, _redeliver_old_day)
    _dbt(env, *SELECT)
    assert sorted(_stg(db, SESSION_SQL)) == [("u1:100", 6, 3), ("u6:400", 1, 0)]
