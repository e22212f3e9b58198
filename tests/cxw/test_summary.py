"""The end-of-run summary (cxw/summary.py) built from real extraction reports."""
from __future__ import annotations

from datetime import datetime, timezone

from cxw.summary import build_summary, render
from extractors import ga4
from ga4_redelivery import generate_at, old_redelivery


def test_the_summary_names_the_redelivered_export_days(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    a, b, day = old_redelivery()
    demo = tmp_path / "company"
    kw = {f"{k}_root": str(tmp_path / k) for k in ("raw", "state", "deadletter")}
    cfg = ga4.Ga4Settings(export_url=str(demo / "ga4"), history_start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    generate_at(demo, a)
    first = ga4.extract(settings=cfg, window_start=cfg.history_start, window_end=a, **kw)
    generate_at(demo, b)
    second = ga4.extract(settings=cfg, window_start=cfg.history_start, window_end=b, **kw)

    quiet = render(build_summary("first", [first], None, None, None, None))
    assert "Re-delivered" not in quiet
    s = build_summary("second", [second], None, None, None, None)
    [line] = [l for l in render(s).splitlines() if l.startswith("Re-delivered export days")]
    [d] = [d for d in s["redelivered_days"] if d["export_date"] == day.isoformat()]
    assert d["source"] == "ga4" and f"ga4 {day.isoformat()} ({d['rows']:,} rows)" in line
    assert len(s["redelivered_days"]) == len(second["redelivered_days"])


def test_the_summary_shows_what_the_analyses_wrote(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    # the report cxw.analytics.runner.run_analyses returns (and the analyze task hands to summarize)
    analyses = {"key_drivers": {"cx_key_drivers": 1234}, "clv": {"cx_customer_clv_predicted": 987,
                                                                  "cx_clv_calibration": 6}, "seconds": 4.5}
    s = build_summary("run-a", [], None, None, None, None, analyses=analyses)
    assert s["analyses"] == analyses and s["timing"]["analyze"] == 4.5
    [line] = [l for l in render(s).splitlines() if l.startswith("Analyses (rows written)")]
    assert line == ("Analyses (rows written): key_drivers cx_key_drivers 1,234; clv cx_customer_clv_predicted 987, "
                    "cx_clv_calibration 6 (4.5 s)")
    assert not [l for l in render(build_summary("run-b", [], None, None, None, None)).splitlines()
                if l.startswith("Analyses")]  # a run whose build was skipped wrote none
