"""A GA4 export day first delivered as an empty (0-byte) file and re-exported later with its rows, end to end against
the answer key (demo dirt ga4_empty_first_delivery_rate).

One demo company (XS, seed 42, GA4 linked 23 days before the window end: `ga4_days`) regenerated in place, one
CXW_HOME, two DAG runs:

  1  as_of = the midnight after the day's empty export   the day lands with 0 rows: a 100 % drop, but on the 4th
                                                          export day (3 comparable loads < CXW_GATE_VOLUME_LOOKBACK
                                                          = 7), so the raw gate warns, names the export day, and the
                                                          run publishes; the day has no session (answer key: none)
  2  as_of = the midnight after the re-export            the day is re-delivered with its rows and re-loaded; its
                                                          sessions count (answer key: all of them)

At 7 or more comparable loads the same empty first delivery blocks the run (README, the quality gate) until the
re-delivery supersedes it; that rule is tested on the gate itself (tests/gate). Here it must warn: the DAG is
the one a customer runs, the export is young. After each run every published KPI row (day, month, window; channel
and segment 'all') equals that as_of's answer key - integers equal, money to the cent, ratios within 1e-9 - and
the records are accounted for. Two XS DAG runs: about 2 minutes on 2 cores.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from _kpi_compare import compare, published_kpis, record_accounting

from demo_company.config import DEFAULT_DAYS, DEFAULT_START, scaled_dirt
from demo_company.ga4 import empty_delivery_schedule
from demo_company.util import date_to_us, us_to_dt

pytestmark = pytest.mark.e2e

SCALE, SEED = "XS", 42
WINDOW_END = DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS)
DIRT = {"ga4_empty_first_delivery_rate": 0.05}
DAY_INDEX = 3  # the empty day is the 4th export day: 3 comparable loads before it


def _shape() -> tuple[dt.date, dict[str, str], int]:
    """(the day, {run: as_of}, ga4_days): the last empty day of the schedule whose re-export falls before the window
    end, the export starting DAY_INDEX days before it; run 1 at the midnight after its empty export (before the
    re-export), run 2 at the midnight after the re-export."""
    sched = empty_delivery_schedule(SEED, date_to_us(DEFAULT_START), DEFAULT_DAYS, scaled_dirt(DIRT))
    end_us = date_to_us(WINDOW_END)
    ymd, (first, again) = max((d, fa) for d, fa in sched.items() if fa[1] + 86_400_000_000 < end_us)
    day = dt.datetime.strptime(ymd, "%Y%m%d").date()
    run1 = us_to_dt(first).date() + dt.timedelta(days=1)
    run2 = us_to_dt(again).date() + dt.timedelta(days=1)
    assert date_to_us(run1) < again, "the re-export must come after run 1"
    return day, {"1": run1.isoformat(), "2": run2.isoformat()}, (WINDOW_END - day).days + DAY_INDEX


@pytest.fixture(scope="module")
def runs(tmp_path_factory, seed_airflow):
    day, as_of, ga4_days = _shape()
    home = tmp_path_factory.mktemp("cxw_empty_day")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_HOME", str(home))
        for var in [v for v in os.environ if v.startswith("CXW_KPI_WINDOW_") or v.startswith("CXW_GATE_") or v in (
                "AIRFLOW_HOME", "CXW_BUILD_DB", "CXW_FORCE_BUILD", "CXW_HISTORY_START")]:
            mp.delenv(var)
        from cxw.config import paths
        from cxw_tools.demo import airflow_env, generate_demo, run_dag

        p = paths()
        env = airflow_env()
        seed_airflow(env["AIRFLOW_HOME"])  # prepared: no `prepare_airflow` here (tests/conftest.py)
        data_dir = p.demo / f"{SCALE}-{SEED}"
        results = {"day": day}
        for label in ("1", "2"):
            manifest = generate_demo(data_dir, SCALE, SEED, as_of=as_of[label], dirt=DIRT, ga4_days=ga4_days)
            key = json.loads((data_dir / "answer_key.json").read_text())
            before = {str(d) for d in p.raw.glob("ga4/*/*") if d.is_dir()}
            size = (data_dir / "ga4" / f"events_{day:%Y%m%d}.json").stat().st_size
            run = run_dag(data_dir, manifest, env=env, log_name=f"empty-day-{label}")
            summaries = [f for f in p.runs.glob("*/summary.json") if f.stat().st_mtime >= run["run_started"] - 1]
            newest = max(summaries, key=lambda f: f.stat().st_mtime)
            raw_gate = newest.with_name("validation_raw.json")
            loads = [json.loads(f.read_text()) for f in sorted(p.raw.glob("ga4/*/*/_load.json"))
                     if str(f.parent) not in before]
            res = {"run": run, "key": key, "manifest": manifest, "file_size": size, "loads": loads,
                   "summary": json.loads(newest.read_text()),
                   "raw_gate": json.loads(raw_gate.read_text()) if raw_gate.exists() else {}}
            if p.published_db.exists():
                res["published"] = published_kpis(p.published_db)
                res["kpis"] = compare(key, res["published"])
            if p.build_db.exists():
                res["accounting"] = record_accounting(p.build_db, key["expected"])
            results[label] = res
            print(f"run {label} (as_of {key['as_of']}): state {run['state']}, {run['dag_seconds']:.0f}s; "
                  f"summary {res['summary'].get('status')}; export day {day} file {size} bytes")
            if "kpis" in res:
                print(res["kpis"].report() or "all compared KPI rows equal")
    return results


def _day_load(r: dict, day: dt.date) -> dict:
    mine = [ld for ld in r["loads"] if str(ld.get("export_date", ""))[:10] in (day.isoformat(), f"{day:%Y%m%d}")]
    assert len(mine) == 1, f"loads of export day {day}: {mine}"
    return mine[0]


def test_the_empty_first_delivery_warns_and_the_run_publishes(runs):
    day, r = runs["day"], runs["1"]
    assert r["manifest"]["ga4_empty_at_as_of"] == [f"{day:%Y%m%d}"] and r["file_size"] == 0
    ld = _day_load(r, day)
    assert int(ld["rows"]) == 0
    vol = [v for v in r["raw_gate"].get("volume", []) if v["load_id"] == ld["load_id"]]
    assert len(vol) == 1 and vol[0]["kind"] == "day" and vol[0]["rows"] < vol[0]["min_rows"], vol
    assert vol[0]["comparable_loads"] == 3 and not vol[0]["blocking"], vol
    offending = [o for x in r["raw_gate"].get("results", []) if not x["success"] and x["severity"] == "warn"
                 for o in x.get("offending_loads") or []]
    mine = [o for o in offending if o.startswith(f"{ld['load_id']}: raw.ga4__events export day")]
    assert mine and "has 0 rows" in mine[0] and "warn only: a block needs 7 comparable loads" in mine[0], offending
    assert r["run"]["state"] == "success" and r["summary"].get("status") == "published", r["summary"].get("reason")
    assert ("day", "sessions", day.isoformat()) not in r["published"]


def test_the_redelivery_lands_the_day_and_its_sessions_count(runs):
    day, r = runs["day"], runs["2"]
    assert r["manifest"]["ga4_empty_at_as_of"] == [] and r["file_size"] > 0
    ld = _day_load(r, day)
    assert int(ld["rows"]) > 0 and ld.get("redelivered"), ld
    assert r["run"]["state"] == "success" and r["summary"].get("status") == "published", r["summary"].get("reason")
    want = next(k for k in r["key"]["kpis"]
                if k["kpi"] == "sessions" and k["grain"] == "day" and k["period_start"] == day.isoformat())
    assert want["n"] > 0 and r["published"][("day", "sessions", day.isoformat())][3] == want["n"]


@pytest.mark.parametrize("label", ["1", "2"])
def test_every_kpi_row_equals_the_answer_key(runs, label):
    r = runs[label]
    assert "kpis" in r and r["kpis"].compared > 0, f"run {label}: nothing published"
    assert not r["kpis"].bad_kpis, f"run {label} (as_of {r['key']['as_of']}):\n" + r["kpis"].report()


@pytest.mark.parametrize("label", ["1", "2"])
def test_every_record_is_accounted_for(runs, label):
    unbalanced, problems = runs[label]["accounting"]
    assert unbalanced == 0 and not problems, "\n".join(problems)
