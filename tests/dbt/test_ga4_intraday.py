"""GA4 intraday tables (CXW_GA4_INTRADAY, on with CXW_SCHEDULE=hourly): during a day the extractor lands the day so far
from `events_intraday_YYYYMMDD`; when the daily table `events_YYYYMMDD` lands (the full day, with fields the intraday
table lacks) it replaces that day's intraday rows in staging - nothing lost, nothing twice: staging equals the demo
company's answer key at every step - and the daily table wins over an intraday load of the day that landed after it.
Real extractor, real loader, real dbt (the three GA4 staging models), the demo company at XS."""
from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_incremental import _dbt, _env  # noqa: E402

from cxw.loader import load_into_duckdb  # noqa: E402
from demo_company.generator import generate  # noqa: E402
from extractors import ga4  # noqa: E402

UTC = timezone.utc
SELECT = ["build", "--select", "base_ga4__events", "base_ga4__events_typed", "stg_ga4__events",
          "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious"]
DELAY_H = 6            # the daily table lands 6 h after the day ended
DAY = datetime(2025, 2, 10, tzinfo=UTC)


def test_intraday_rows_are_replaced_by_the_daily_table_when_it_lands(tmp_path):
    demo = tmp_path / "company"
    dirs = {k: tmp_path / k for k in ("raw", "state", "deadletter")}
    for p in dirs.values():
        p.mkdir()
    cfg = ga4.Ga4Settings(export_url=str(demo / "ga4"), history_start=datetime(2025, 1, 1, tzinfo=UTC),
                          intraday=True)
    kw = dict(raw_root=str(dirs["raw"]), state_root=str(dirs["state"]), deadletter_root=str(dirs["deadletter"]))
    db = tmp_path / "build.duckdb"
    env = _env(tmp_path, db)

    def staged(sql: str) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def hour(as_of: datetime, **extract_kw) -> tuple[dict, dict]:
        manifest = generate(demo, scale="XS", seed=42, as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"), workers=1,
                            ga4_intraday_delay_h=DELAY_H)
        rep = ga4.extract(settings=cfg, window_start=as_of - timedelta(hours=1), window_end=as_of, **kw,
                          **extract_kw)
        load_into_duckdb(dirs["raw"], db, sources=["ga4"])
        _dbt(env, *SELECT)
        return manifest, rep

    def records() -> int:
        return json.loads((demo / "answer_key.json").read_text())["expected"]["ga4.events"]["records"]

    day_key, day_iso = DAY.strftime("%Y%m%d"), DAY.date().isoformat()
    # 14:00 of DAY: the day so far is in its intraday table (yesterday's daily table landed at 06:00)
    m1, r1 = hour(DAY + timedelta(hours=14))
    assert m1["ga4_intraday_at_as_of"] == [day_key]
    assert r1["intraday_days"] == [day_iso]
    assert staged("select count(*) from staging.stg_ga4__events") == [(records(),)]
    [(n_intraday,)] = staged(f"select count(*) from staging.stg_ga4__events where export_date = '{day_iso}'")
    assert n_intraday > 0

    # 15:00: the intraday table grew - landed again, the newer intraday load replaces the earlier one
    hour(DAY + timedelta(hours=15))
    assert staged("select count(*) from staging.stg_ga4__events") == [(records(),)]

    # DAY+1 08:00: the daily table of DAY landed (the whole day; intraday of DAY gone), DAY+1 is intraday
    m3, r3 = hour(DAY + timedelta(days=1, hours=8))
    assert day_key not in m3["ga4_intraday_at_as_of"] and (demo / "ga4" / f"events_{day_key}.json").exists()
    assert staged("select count(*) from staging.stg_ga4__events") == [(records(),)]
    [(n_daily,)] = staged(f"select count(*) from staging.stg_ga4__events where export_date = '{day_iso}'")
    assert n_daily > n_intraday
    [(daily_load,)] = staged(f"select distinct _load_id from staging.stg_ga4__events where export_date = '{day_iso}'")
    assert staged(f"select distinct _export_table from raw_ga4.events where _load_id = '{daily_load}'") == \
        [(f"events_{day_key}",)]
    # raw keeps the intraday deliveries (the ledger counts them as duplicates: superseded deliveries)
    assert staged(f"select count(distinct _load_id) from raw_ga4.events where _export_date = '{day_iso}' "
                  f"and _export_table = 'events_intraday_{day_key}'") == [(2,)]

    # an intraday table of DAY landing AFTER its daily table (a late listing, a backfill re-read): the daily wins
    late = tmp_path / "late_export"
    late.mkdir()
    shutil.copy(demo / "ga4" / f"events_{day_key}.json", late / f"events_intraday_{day_key}.json")
    ga4.extract(settings=ga4.Ga4Settings(export_url=str(late), history_start=DAY, intraday=True),
                window_start=DAY, window_end=DAY + timedelta(days=1), mode="window", **kw)
    load_into_duckdb(dirs["raw"], db, sources=["ga4"])
    _dbt(env, *SELECT)
    assert staged(f"select distinct _load_id from staging.stg_ga4__events where export_date = '{day_iso}'") == \
        [(daily_load,)]
    assert staged("select count(*) from staging.stg_ga4__events") == [(records(),)]

    # the ledger reconciles (the real staging.load_ledger and its data test): every intraday row is staged while its
    # delivery is current and a duplicate (a superseded delivery) once the daily table replaced it
    from cxw.loader import ensure_declared_tables

    con = duckdb.connect(str(db))
    try:
        ensure_declared_tables(con)          # the other sources' raw tables, empty (no load of them here)
    finally:
        con.close()
    _dbt(env, "build", "--select", "+load_ledger", "assert_load_ledger_balances", "--exclude-resource-type",
         "unit_test", "--indirect-selection", "cautious")
    ledger = staged("select l.load_id, l.extracted, l.staged, l.quarantined, l.duplicates, r.t "
                    "from staging.load_ledger l join (select distinct _load_id, _export_table as t "
                    "from raw_ga4.events) r on r._load_id = l.load_id where l.source = 'ga4'")
    assert all(e == s + q + d and d >= 0 for _id, e, s, q, d, _t in ledger)
    intraday_of_day = [(e, s, d) for _id, e, s, _q, d, t in ledger if t == f"events_intraday_{day_key}"]
    assert len(intraday_of_day) == 3 and all(s == 0 and d == e > 0 for e, s, d in intraday_of_day)
    assert sum(s for _id, _e, s, _q, _d, _t in ledger) == records()
