"""The demo company with a long history (issue 14): history from 2018, as-of in 2027, GA4 exported for the last
N days only (`ga4_days`), and its answer key."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from demo_company import generate


@pytest.fixture(scope="module")
def long_xs(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("xs42_long")
    manifest = generate(out, scale="XS", seed=42, start="2018-01-01", days=3300, ga4_days=60, workers=1)
    return out, manifest


def test_a_history_from_2018_to_2027_with_the_ga4_export_of_the_last_60_days(long_xs):
    out, manifest = long_xs
    assert manifest["window"] == {"start": "2018-01-01", "end": "2027-01-14"}
    assert manifest["as_of"] == "2027-01-14T00:00:00Z" and manifest["ga4_export_start"] == "2026-11-15"
    files = sorted(p.name for p in (out / "ga4").iterdir())
    assert len(files) == 60 and files[0] == "events_20261115.json" and files[-1] == "events_20270113.json"
    con = sqlite3.connect(out / "odoo" / "odoo.sqlite")
    first, last = con.execute("select min(date_order), max(date_order) from sale_order").fetchone()
    con.close()
    assert first[:4] == "2018" and last[:4] == "2027"


def test_its_answer_key_covers_2018_to_2027_and_web_kpis_only_the_exported_days(long_xs):
    out, manifest = long_xs
    key = json.loads((out / "answer_key.json").read_text())
    days = {r["period_start"] for r in key["kpis"] if r["grain"] == "day"}
    assert min(days)[:4] == "2018" and max(days) == "2027-01-13"
    web = {r["period_start"] for r in key["kpis"] if r["grain"] == "day" and r["kpi"] == "sessions"}
    assert web and min(web) >= manifest["ga4_export_start"]
    months = [r["period_start"] for r in key["kpis"] if r["kpi"] == "retention_rate"]
    assert len(months) == len(set(months)) == 9 * 12 + 1   # every month 2018-01 .. 2027-01, with or without orders
    assert sum(manifest["counts"]["ga4"].values()) < 10_000


def test_ga4_days_leaves_the_rest_of_the_company_unchanged(tmp_path):
    short, full = tmp_path / "short", tmp_path / "full"
    generate(short, scale="XS", seed=42, start="2018-01-01", days=400, ga4_days=30, workers=1)
    generate(full, scale="XS", seed=42, start="2018-01-01", days=400, workers=1)
    for rel in ("odoo/odoo.sqlite", "api/hubspot/contacts.jsonl", "api/hubspot/email_events.jsonl",
                "api/trustpilot/reviews.jsonl", "ga4/events_20190131.json"):
        assert (short / rel).read_bytes() == (full / rel).read_bytes(), rel
    assert len(list((short / "ga4").iterdir())) == 30 and len(list((full / "ga4").iterdir())) == 400
