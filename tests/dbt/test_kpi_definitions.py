"""The KPI definitions seed (dbt_project/seeds/kpi_definitions.csv, published as kpi.kpi_dictionary): complete rows,
ranges that agree with the marts gate, headline KPIs equal to the run summary's (issue 16.3, 18.3)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "dbt_project" / "seeds" / "kpi_definitions.csv"


def _rows() -> dict[str, dict]:
    with SEED.open(newline="") as f:
        return {r["kpi"]: r for r in csv.DictReader(f)}


def _bound(text: str):
    return float(text) if text != "" else None


def test_every_kpi_definition_is_complete():
    rows = _rows()
    for kpi, r in rows.items():
        assert all(r[c].strip() for c in ("label", "unit", "scale", "formula", "direction_of_good", "aggregation",
                                          "is_headline")), kpi
        lo, hi = _bound(r["range_min"]), _bound(r["range_max"])
        assert lo is None or hi is None or lo < hi, kpi


def test_headline_kpis_of_the_seed_are_the_run_summarys():
    from cxw.summary import HEADLINE_KPIS

    assert {k for k, r in _rows().items() if r["is_headline"] == "true"} == set(HEADLINE_KPIS)


def test_the_seed_says_the_scale_the_kpi_macro_publishes():
    """pct_kpis of dbt_project.yml are published x100: the seed calls them percent / NPS points; the other ratios
    (rates, shares) are fractions 0-1."""
    import yaml

    proj = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    rows = _rows()
    for kpi in proj["pct_kpis"]:
        assert rows[kpi]["unit"] in ("percent", "NPS points"), kpi
    for kpi, r in rows.items():
        if (kpi.endswith("_rate") or kpi.endswith("_share")) and kpi not in proj["pct_kpis"]:
            assert (r["unit"], _bound(r["range_min"]), _bound(r["range_max"])) == ("fraction", 0, 1), kpi


def test_seed_ranges_pass_and_block_what_the_marts_gate_does(tmp_path):
    """Each KPI's seed range agrees with the marts gate's range checks (cxw/gate/marts_suites.py): a value at the
    seed's bounds passes the gate, a value just outside a bound the gate checks is blocked."""
    from cxw.gate import Gate
    from cxw.gate.marts_suites import SUITES

    rows = _rows()
    inside, outside = [], []
    for kpi, r in rows.items():
        lo, hi = _bound(r["range_min"]), _bound(r["range_max"])
        for v in (lo, hi):
            if v is not None:
                inside.append(("month", kpi, 1.0, 1.0, v, 40))
    df = pd.DataFrame(inside, columns=["grain", "kpi", "numerator", "denominator", "value", "n"])
    res = Gate(tmp_path, "marts").run("kpi.kpi_period", "kpi.kpi_period", df, SUITES["kpi.kpi_period"](list(df.columns)),
                                      "test")
    assert [r["why"] for r in res if not r["success"]] == []
    for kpi, r in rows.items():
        lo = _bound(r["range_min"])
        if lo is not None:
            outside.append(("month", kpi, 1.0, 1.0, lo - 1, 40))
    df = pd.DataFrame(outside, columns=["grain", "kpi", "numerator", "denominator", "value", "n"])
    res = Gate(tmp_path / "o", "marts").run("kpi.kpi_period", "kpi.kpi_period", df,
                                            SUITES["kpi.kpi_period"](list(df.columns)), "test")
    assert [r["why"] for r in res if not r["success"]]  # the gate blocks values below the seed's minimum


def test_every_range_the_marts_gate_checks_is_the_seeds():
    """Until the gate reads its ranges from the seed (issue 16.3, not done), each KPI range the gate checks by name
    equals the seed's, so the two definitions cannot drift apart."""
    import re

    from cxw.gate.marts_suites import _ranges_for_kpis

    rows = _rows()
    named = {}
    for c in _ranges_for_kpis():
        m = re.fullmatch(r'kpi=="(\w+)"', c.kwargs["row_condition"])
        if m:
            named[m.group(1)] = (c.kwargs["min_value"], c.kwargs["max_value"])
    assert len(named) >= 7
    assert {k: (_bound(rows[k]["range_min"]), _bound(rows[k]["range_max"])) for k in named} == named
