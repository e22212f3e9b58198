"""dim_dates spans the data actually loaded, whatever its years (issue 14, "Calendar from the data").

On the hand-made raw fixture (tests/dbt/raw_fixture.py) with one order moved to 2015 and one survey response to
2027 - outside the 2024-2026 the calendar once had fixed: the build of the touchpoints, the calendar and the KPI
periods passes (the relationships test fct_touchpoints.occurred_date -> dim_dates included), the calendar holds
whole years from the earliest to the latest touchpoint, a KPI window ending later (the run's data interval end)
extends it, and retention has a row for every calendar month, also the months without any order.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import dbt_cli

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402

from cxw.dbt import kpi_window_vars  # noqa: E402

FIRST_ORDER = "2015-06-01 09:00:00"   # an order years before the rest of the fixture (2025)
LATE_SURVEY = "2027-02-03T10:00:00.000Z"


def _env(tmp: Path, db: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({
        "CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
        **extra,
    })
    return env


def _dbt(env: dict, *args: str) -> subprocess.CompletedProcess:
    return dbt_cli.run(env, *args, timeout=600)


@pytest.fixture(scope="module")
def long_history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dim_dates")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    con = duckdb.connect(str(db))
    # S00001 (confirmed, Anna) in 2015: then no order at all until 2025
    con.execute("update raw_odoo.sale_order set date_order = ?, create_date = ? where id = 1",
                [FIRST_ORDER, "2015-06-01 08:00:00"])
    con.execute("update raw_hubspot.feedback_submissions set \"createdAt\" = ?, \"updatedAt\" = ?, "
                "properties__hs_submission_timestamp = ? where id = '500013'", [LATE_SURVEY] * 3)
    con.close()
    # the touchpoints, the calendar and the tests between them (relationships fct_touchpoints.occurred_date -> dim_dates.date_day)
    proc = _dbt(_env(tmp, db), "build", "--select", "+fct_touchpoints", "+dim_dates", "+kpi_period",
                "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious")
    return tmp, db, proc


def _calendar(db: Path) -> tuple[dt.date, dt.date, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute("select min(date_day), max(date_day), count(*), count(distinct date_day) "
                      "from core.dim_dates").fetchone()
    con.close()
    return row


def test_touchpoints_outside_2024_2026_build_and_find_their_day(long_history):
    tmp, db, proc = long_history
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    con = duckdb.connect(str(db), read_only=True)
    lo, hi = con.execute("select min(occurred_date), max(occurred_date) from core.fct_touchpoints").fetchone()
    missing = con.execute("select count(*) from core.fct_touchpoints as t left join core.dim_dates as d "
                          "on d.date_day = t.occurred_date where d.date_day is null").fetchone()[0]
    con.close()
    assert (lo, hi) == (dt.date(2015, 6, 1), dt.date(2027, 2, 3)), "the fixture's shape changed"
    assert missing == 0
    first, last, n, distinct = _calendar(db)
    # whole years from the earliest to the latest date, one row per day
    assert (first, last) == (dt.date(2015, 1, 1), dt.date(2027, 12, 31))
    assert n == distinct == (last - first).days + 1


def test_the_calendar_reaches_the_data_interval_end(long_history):
    tmp, db, proc = long_history
    assert proc.returncode == 0
    # a run whose data interval ends after the data (the KPI window cxw.tasks.dbt_build passes as --vars)
    env = _env(tmp, db)
    window = kpi_window_vars(["2015-01-01", "2028-01-02"])
    proc = _dbt(env, "build", "--select", "dim_dates", *window)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert _calendar(db)[:2] == (dt.date(2015, 1, 1), dt.date(2028, 12, 31))
    before = _calendar(db)
    assert _dbt(env, "build", "--select", "dim_dates", *window).returncode == 0
    assert _calendar(db) == before, "an identical rebuild changed the calendar"


def test_retention_has_every_calendar_month_also_without_orders(long_history):
    tmp, db, proc = long_history
    assert proc.returncode == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(((str(p), (num, den, val, n)) for p, num, den, val, n in con.execute(
        "select period_start, numerator, denominator, value, n from kpi.kpi_period "
        "where kpi = 'retention_rate' and grain = 'month'").fetchall()))
    con.close()
    # the window is the extent of the data (no window vars): 2015-06-01 .. 2027-02-03, one row per month
    assert len(rows) == 12 * 12 - 5 + 2 and min(rows) == "2015-06-01" and max(rows) == "2027-02-01"
    # July 2015: Anna bought in June (S = 1), nobody in July (E = 0) -> 0 %, not a missing row
    assert rows["2015-07-01"] == (0, 1, 0, 1)
    assert rows["2015-08-01"] == (0, 0, None, 0)   # S = 0: no value
