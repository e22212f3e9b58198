"""A company whose history starts in 2018 and whose run is dated in 2027 (issue 14, "Calendar from the data").

`python -m cxw_tools demo --scale XS --start 2018-01-01 --days 3300 --ga4-days 60`: nine years of ERP, CRM and review
history, GA4 exported for the last 60 days only (linked late, keeps the files few), as-of and run day 2027-01-14.
The real DAG under `airflow dags test` must build (touchpoints dated 2015-2027 find their calendar day), pass both
gates and publish, and every published KPI - day, month and window - must equal the generator's answer key.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SHAPE = ["--start", "2018-01-01", "--days", "3300", "--ga4-days", "60"]
DEMO_DIR = "XS-42-days3300-ga4days60-start2018-01-01"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def long_run(tmp_path_factory, seed_airflow):
    home = tmp_path_factory.mktemp("cxw_long_history")
    seed_airflow(home / "airflow")  # where `cxw demo` keeps Airflow's home under this CXW_HOME
    env = {**os.environ, "CXW_HOME": str(home)}
    for k in ("CXW_BUILD_DB", "AIRFLOW_HOME", "CXW_HISTORY_START", "CXW_KPI_WINDOW_START", "CXW_KPI_WINDOW_END"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "cxw_tools", "demo", "--scale", "XS", "--seed", "42", *SHAPE], cwd=REPO,
                          env=env, capture_output=True, text=True)
    return home, proc


def _published(home: Path):
    return duckdb.connect(str(home / "published" / "cx_warehouse.duckdb"), read_only=True,
                          config={"enable_external_access": False})


def test_a_history_from_2018_run_in_2027_builds_passes_the_gate_and_publishes(long_run):
    home, proc = long_run
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    manifest = json.loads((home / "demo" / DEMO_DIR / "manifest.json").read_text())
    assert manifest["window"] == {"start": "2018-01-01", "end": "2027-01-14"}
    assert manifest["ga4_export_start"] == "2026-11-15" and len(manifest["counts"]["ga4"]) == 60
    con = _published(home)
    interval_end = con.execute("select data_interval_end from publication").fetchone()[0]
    first, last = con.execute("select min(date_day), max(date_day) from core.dim_dates").fetchone()
    lo, hi = con.execute("select min(occurred_date), max(occurred_date) from core.fct_touchpoints").fetchone()
    con.close()
    assert str(interval_end)[:10] == "2027-01-14"
    assert lo < dt.date(2018, 2, 1) and hi >= dt.date(2027, 1, 1), (lo, hi)
    # whole years from the earliest date in any source (people known before the history start: 2017) to the
    # year of the run
    assert (first.month, first.day) == (1, 1) and 2016 <= first.year <= lo.year and last == dt.date(2027, 12, 31)


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def test_its_published_kpis_equal_the_answer_key(long_run):
    home, proc = long_run
    assert proc.returncode == 0, proc.stdout[-3000:]
    key = json.loads((home / "demo" / DEMO_DIR / "answer_key.json").read_text())
    con = _published(home)
    rows = con.execute(
        "select 'day', kpi, kpi_date::varchar, numerator, denominator, value, n from kpi.kpi_daily "
        "where channel = 'all' and segment = 'all' union all "
        "select grain, kpi, period_start::varchar, numerator, denominator, value, n from kpi.kpi_period "
        "where channel = 'all' and segment = 'all'").fetchall()
    con.close()
    have = {(g, k, p[:10]): (num, den, val, n) for g, k, p, num, den, val, n in rows}
    published = {k for _, k, _ in have}
    want = {(r["grain"], r["kpi"], str(r["period_start"])[:10]): r for r in key["kpis"]
            if r["kpi"] in published and r.get("channel", "all") == "all" and r.get("segment", "all") == "all"}
    # the shape is exercised: KPI rows in the first and in the last year
    assert {p[:4] for _, _, p in want} >= {"2018", "2027"}
    mismatches = []
    for k, r in sorted(want.items()):
        if k not in have:
            mismatches.append(f"{k}: in the answer key (n={r['n']}) but not in the marts")
            continue
        num, den, val, n = have[k]
        if not (_close(num, r["numerator"]) and _close(den, r["denominator"]) and _close(val, r["value"])
                and int(n) == int(r["n"])):
            mismatches.append(f"{k}: warehouse {(num, den, val, n)} != key "
                              f"{(r['numerator'], r['denominator'], r['value'], r['n'])}")
    key_kpis = {r["kpi"] for r in key["kpis"]}
    extra = sorted(k for k in have if k[1] in key_kpis and k not in want)
    assert len(want) > 5000
    assert not mismatches, f"{len(mismatches)} of {len(want)} KPI rows differ, e.g.:\n" + "\n".join(mismatches[:25])
    assert not extra, f"rows the answer key does not have: {extra[:10]}"
