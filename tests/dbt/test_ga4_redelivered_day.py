"""A GA4 export day re-delivered weeks later (older than any lookback) is extracted again, copied by the real loader
and built by real dbt: staging holds the latest delivery of the day, never both (no double counting), and the total
equals the answer key's distinct arrived rows before and after the re-delivery."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_incremental import _dbt, _env  # noqa: E402

from cxw.loader import load_into_duckdb  # noqa: E402
from extractors import ga4  # noqa: E402
from ga4_redelivery import generate_at, old_redelivery  # noqa: E402

SELECT = ["build", "--select", "base_ga4__events", "base_ga4__events_typed", "stg_ga4__events", "--exclude-resource-type", "unit_test",
          "--indirect-selection", "cautious"]   # only tests whose parents are all selected (not the identity audit's)


def _records(demo: Path) -> int:
    return json.loads((demo / "answer_key.json").read_text())["expected"]["ga4.events"]["records"]


def test_the_latest_delivery_of_an_export_day_replaces_the_earlier_one_in_staging(tmp_path):
    a, b, day = old_redelivery()
    demo = tmp_path / "company"
    dirs = {k: tmp_path / k for k in ("raw", "state", "deadletter")}
    for p in dirs.values():
        p.mkdir()
    cfg = ga4.Ga4Settings(export_url=str(demo / "ga4"), history_start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    kw = dict(raw_root=str(dirs["raw"]), state_root=str(dirs["state"]), deadletter_root=str(dirs["deadletter"]),
              window_start=cfg.history_start)
    db = tmp_path / "build.duckdb"
    env = _env(tmp_path, db)

    def extract_load_build(as_of: datetime) -> dict:
        generate_at(demo, as_of)
        rep = ga4.extract(settings=cfg, window_end=as_of, **kw)
        load_into_duckdb(dirs["raw"], db, sources=["ga4"])
        _dbt(env, *SELECT)
        return rep

    def staged(sql: str) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    first = extract_load_build(a)
    day_sql = f"from staging.stg_ga4__events where export_date = '{day.isoformat()}'"
    assert staged("select count(*) from staging.stg_ga4__events") == [(_records(demo),)]
    [(n_first,)] = staged(f"select count(*) {day_sql}")
    [first_load] = [l for l in first["loads"]
                    if json.loads((Path(l["path"]) / "_load.json").read_text())["export_date"] == day.isoformat()]

    second = extract_load_build(b)
    # every arrived row once: the re-delivered sessions are in, the earlier delivery of the day is not counted too
    assert staged("select count(*) from staging.stg_ga4__events") == [(_records(demo),)]
    [again] = [l for l in second["loads"]
               if json.loads((Path(l["path"]) / "_load.json").read_text())["export_date"] == day.isoformat()]
    # raw holds both deliveries of the day; staging only the latest one, with the re-delivered sessions
    assert staged(f"select count(*) from raw_ga4.events where _export_date = '{day.isoformat()}' "
                  f"and _load_id = '{first_load['load_id']}'") == [(first_load["rows"],)]
    assert staged(f"select distinct _load_id {day_sql}") == [(again["load_id"],)]
    [(n_second,)] = staged(f"select count(*) {day_sql}")
    assert n_second > n_first
