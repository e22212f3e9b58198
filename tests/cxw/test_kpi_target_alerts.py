"""KPI target breaches (kpi.kpi_vs_target.is_breach) are outer-loop alerts handed over like the detractor alerts:
the same drop and export record, their own type and id prefix, each breach exported exactly once across runs and
generations, and a month still in progress (not closed, so not a breach) exports nothing. Real files, real publish."""

from __future__ import annotations

import json

import duckdb
import pytest

ALERTS_DDL = """create table cx.cx_detractor_alerts (alert_id varchar, alert_type varchar, person_sk varchar,
    source varchar, source_record_id varchar, score integer, comment varchar, created_at timestamp,
    due_at timestamp, preceding_touchpoint_type varchar, preceding_touchpoint_at timestamp,
    is_loop_closed boolean, channel varchar)"""
DETRACTORS = [(f"al-{i}", "nps_detractor", f"p{i}", "hubspot", f"r{i}", 3, "late", "2025-06-01 10:00:00",
               "2025-06-03 10:00:00", None, None, False, "email") for i in range(3)]

TARGETS_DDL = """create table kpi.kpi_vs_target (target_key varchar, kpi varchar, grain varchar, period_start date,
    period_end date, segment varchar, channel varchar, value double, n bigint, is_low_sample boolean,
    direction_of_good varchar, target_value double, gap_to_target double, is_target_met boolean,
    target_owner_role varchar, is_period_closed boolean, is_breach boolean)"""


def _row(kpi, month, value, target, direction, closed, n=40):
    met = value >= target if direction == "higher" else value <= target
    low = n < 30
    start, end = f"2025-{month:02d}-01", f"2025-{month + 1:02d}-01"
    return (f"{kpi}|month|{start}|all|all", kpi, "month", start, end, "all", "all", value, n, low, direction,
            target, value - target, met, "Head of CX", closed, closed and not met and not low)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    monkeypatch.delenv("CXW_ALERTS_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CXW_ALERTS_WEBHOOK_TOKEN", raising=False)
    from cxw.config import paths

    p = paths()
    p.warehouse_dir.mkdir(parents=True)
    con = duckdb.connect(str(p.build_db))
    con.execute("create schema kpi; create schema core; create schema cx")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 10.0 as value, 40 as n")
    con.execute(ALERTS_DDL)
    con.executemany("insert into cx.cx_detractor_alerts values (?,?,?,?,?,?,?,?,?,?,?,?,?)", DETRACTORS)
    con.execute(TARGETS_DDL)
    con.executemany("insert into kpi.kpi_vs_target values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [
        _row("nps", 1, 25.0, 30.0, "higher", True),                     # missed, closed: the breach
        _row("first_response_median_h", 1, 60.0, 72.0, "lower", True),  # met
        _row("first_response_median_h", 2, 90.0, 72.0, "lower", True, n=5),  # missed on a low sample
        _row("nps", 2, 20.0, 30.0, "higher", False),                    # missed, month in progress
    ])
    con.close()
    return p


def _drop_ids(home, generation) -> list[dict]:
    return [json.loads(x) for x in (home.home / "alerts" / generation / "alerts.jsonl").read_text().splitlines()]


def test_a_target_breach_is_exported_once_and_a_month_in_progress_only_when_closed(home):
    from cxw.alerts import export_alerts, read_exported_ids
    from cxw.publish import publish

    gen1 = publish("run-1", "a", "b")["generation_id"]
    rep = export_alerts()
    assert rep["status"] == "exported" and rep["new_alerts"] == 4  # 3 detractor alerts + 1 breach
    breach = [a for a in _drop_ids(home, gen1) if a["alert_type"] == "kpi_target_breach"]
    assert [a["alert_id"] for a in breach] == ["kpi-target:nps|month|2025-01-01|all|all"]
    b = breach[0]
    assert b["source"] == "kpi_targets" and b["score"] == 25.0 and b["person_sk"] is None
    assert b["created_at"] == "2025-02-01T00:00:00+00:00" and b["channel"] == "all"
    assert "25 vs target 30" in b["comment"] and "higher is better" in b["comment"] and "Head of CX" in b["comment"]

    # Second run on the same generation: nothing new.
    assert export_alerts()["new_alerts"] == 0

    # The next generation: January's value was revised (same breach, not raised again) and February has closed,
    # still missing its target: only February's breach is new.
    con = duckdb.connect(str(home.build_db))
    con.execute("update kpi.kpi_vs_target set value = 24, gap_to_target = -6 where target_key like 'nps|month|2025-01%'")
    con.execute("update kpi.kpi_vs_target set is_period_closed = true, is_breach = true "
                "where target_key like 'nps|month|2025-02%'")
    con.close()
    gen2 = publish("run-2", "a", "b")["generation_id"]
    rep2 = export_alerts()
    assert rep2["new_alerts"] == 1 and rep2["generation_id"] == gen2
    assert [a["alert_id"] for a in _drop_ids(home, gen2)] == ["kpi-target:nps|month|2025-02-01|all|all"]

    # A re-run exports nothing again; the export record holds each alert once.
    assert export_alerts()["new_alerts"] == 0
    ledger = read_exported_ids()
    assert sorted(k for k in ledger if k.startswith("kpi-target:")) == [
        "kpi-target:nps|month|2025-01-01|all|all", "kpi-target:nps|month|2025-02-01|all|all"]
    assert ledger["kpi-target:nps|month|2025-01-01|all|all"] == gen1


def test_breaches_are_exported_without_a_detractor_alert_table(home):
    from cxw.alerts import export_alerts
    from cxw.publish import publish

    con = duckdb.connect(str(home.build_db))
    con.execute("drop table cx.cx_detractor_alerts")
    con.close()
    publish("run-1", "a", "b")
    rep = export_alerts()
    assert rep["status"] == "exported" and rep["new_alerts"] == 1
