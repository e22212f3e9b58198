"""The KPI definitions seed (dbt_project/seeds/kpi_definitions.csv, published as kpi.kpi_dictionary), the one place
each KPI is defined (issue 16.3, 18.3): complete rows, the scale factor of macro kpi_value, the ranges the marts gate
checks, the headline KPIs of the run summary."""

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
        assert all(r[c].strip() for c in ("label", "unit", "scale", "scale_factor", "formula", "direction_of_good",
                                          "aggregation", "is_headline")), kpi
        lo, hi = _bound(r["range_min"]), _bound(r["range_max"])
        assert lo is None or hi is None or lo < hi, kpi


def test_the_run_summary_shows_the_headline_kpis_of_the_seed_in_its_order(tmp_path):
    from cxw.summary import HEADLINE_KPIS, headline_kpis

    assert HEADLINE_KPIS == [k for k, r in _rows().items() if r["is_headline"] == "true"]
    # read from the file it is given: another seed, another headline
    other = tmp_path / "kpi_definitions.csv"
    other.write_text("kpi,is_headline\nb,true\na,false\nc,true\n")
    assert headline_kpis(other) == ["b", "c"]


def test_the_scale_factor_says_the_unit():
    """macro kpi_value publishes a ratio as scale_factor x numerator / denominator: 100 for the KPIs the seed calls
    percent / NPS points, 1 for the others; rates and shares are fractions 0-1."""
    for kpi, r in _rows().items():
        assert float(r["scale_factor"]) == (100 if r["unit"] in ("percent", "NPS points") else 1), kpi
        if (kpi.endswith("_rate") or kpi.endswith("_share")) and r["unit"] != "percent":
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


def test_the_marts_gate_checks_every_range_of_the_seed_and_no_other():
    """The gate reads its KPI ranges from the seed (cxw/gate/marts_suites.py kpi_ranges): each KPI with a bound in the
    seed is checked by name with exactly that bound, and no KPI range is checked that the seed does not define."""
    import re

    from cxw.gate.marts_suites import SUITES

    rows = _rows()
    named = {}
    for c in SUITES["kpi.kpi_period"](["kpi", "value", "n"]):
        if c.kwargs.get("column") != "value":
            continue
        m = re.fullmatch(r'kpi=="(\w+)"', c.kwargs["row_condition"])
        assert m, c.kwargs["row_condition"]  # no range by pattern: every range is a KPI's own
        named[m.group(1)] = (c.kwargs["min_value"], c.kwargs["max_value"])
    seed = {k: (_bound(r["range_min"]), _bound(r["range_max"])) for k, r in rows.items()
            if r["range_min"] or r["range_max"]}
    assert len(seed) >= 30
    assert named == seed
