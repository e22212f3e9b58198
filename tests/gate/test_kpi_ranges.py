"""The marts gate's KPI ranges follow the KPI definitions (cxw/gate/marts_suites.py), run through the real GE gate."""
from __future__ import annotations

import pandas as pd

from cxw.gate import Gate
from cxw.gate.marts_suites import SUITES


def _failed(tmp_path, rows: list[tuple]) -> list[str]:
    df = pd.DataFrame(rows, columns=["grain", "kpi", "numerator", "denominator", "value", "n"])
    results = Gate(tmp_path, "marts").run("kpi.kpi_period", "kpi.kpi_period", df, SUITES["kpi.kpi_period"](list(df.columns)),
                                          "test")
    return [r["why"] for r in results if not r["success"]]


def test_retention_above_100_passes_the_gate(tmp_path):
    # 100 x (E - N) / S: two customers back after a pause, one customer in the previous month -> 200 (issue 14: a
    # sparse month of a long history). The definition has no upper bound; the gate must not block it.
    rows = [("month", "retention_rate", 2.0, 1.0, 200.0, 1), ("month", "nps", 1.0, 4.0, 25.0, 4)]
    assert _failed(tmp_path, rows) == []


def test_negative_retention_and_nps_out_of_range_are_blocked(tmp_path):
    rows = [("month", "retention_rate", -1.0, 2.0, -50.0, 2), ("month", "nps", 5.0, 4.0, 125.0, 4)]
    assert sorted(_failed(tmp_path, rows)) == ["nps outside [-100, 100]", "retention_rate below 0"]
