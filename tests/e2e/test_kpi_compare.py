"""The end-to-end tests' KPI comparison catches what it must: integers equal, money to the cent, ratios within 1e-9,
rows missing on either side — all of them, grouped by KPI. Runs on a real XS answer key, no pipeline."""

from __future__ import annotations

import json

import pytest
from _kpi_compare import compare


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    import demo_company

    out = tmp_path_factory.mktemp("xs")
    demo_company.generate(out, scale="XS", seed=3, as_of="2025-06-16T00:00:00Z")
    return json.loads((out / "answer_key.json").read_text())


def _published_from(key: dict) -> dict:
    return {(r["grain"], r["kpi"], str(r["period_start"])[:10]): (r["numerator"], r["denominator"], r["value"], r["n"])
            for r in key["kpis"] if r.get("channel", "all") == "all" and r.get("segment", "all") == "all"}


def _first(have: dict, kpi: str, grain: str = "window"):
    return next(k for k in sorted(have) if k[1] == kpi and k[0] == grain)


def test_the_answer_key_equals_itself(key):
    res = compare(key, _published_from(key))
    assert res.compared > 300 and not res.mismatches and not res.extra and not res.unpublished


def test_every_kind_of_difference_is_reported_grouped_by_kpi(key):
    have = _published_from(key)
    k_rev = _first(have, "net_revenue")
    num, den, val, n = have[k_rev]
    have[k_rev] = (num + 0.004, den, val + 0.004, n)            # within the cent: equal
    k_aov = _first(have, "aov", "month")
    num, den, val, n = have[k_aov]
    have[k_aov] = (num + 0.01, den, val, n)                     # one cent: differs
    k_nps = next(k for k in sorted(have) if k[1] == "nps" and k[0] == "day" and have[k][2])
    num, den, val, n = have[k_nps]
    have[k_nps] = (num, den, val * (1 + 1e-8), n)               # beyond 1e-9: differs
    k_orders = _first(have, "orders", "day")
    num, den, val, n = have[k_orders]
    have[k_orders] = (num, den, val, n + 1)                     # n off by one
    k_ses = _first(have, "sessions", "month")
    del have[k_ses]                                             # not published
    k_csat = _first(have, "csat_pct", "day")
    have[("day", "csat_pct", "1999-01-01")] = have[k_csat]      # published, not in the key
    k_nps2 = [k for k in sorted(have) if k[1] == "nps" and k[0] == "day" and have[k][2]][1]
    num, den, val, n = have[k_nps2]
    have[k_nps2] = (num, den, val * (1 + 1e-11), n)             # within 1e-9: equal
    res = compare(key, have)
    assert sorted(res.mismatches) == ["aov", "nps", "orders", "sessions"]
    assert all(len(v) == 1 for v in res.mismatches.values())
    assert list(res.extra) == ["csat_pct"] and res.bad_kpis == {"aov", "nps", "orders", "sessions", "csat_pct"}
    text = res.report()
    for needle in ("aov: 1 rows differ", "sessions: 1 rows differ", "but not published",
                   "1999-01-01", "published, not in the answer key"):
        assert needle in text


def test_a_kpi_the_warehouse_does_not_publish_is_named(key):
    have = {k: v for k, v in _published_from(key).items() if k[1] != "loop_closed_rate"}
    res = compare(key, have)
    assert res.unpublished == {"loop_closed_rate"} and not res.mismatches
