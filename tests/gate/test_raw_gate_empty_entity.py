"""Empty is a valid state (issue 14.6) at the raw gate: an entity that has never delivered a row (a portal without
deals) has no volume baseline, so its zero-row loads neither block nor warn, however many there are; the day it
delivers rows for the first time passes too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_raw_gate import _feedback, _history, _land, home  # noqa: E402,F401


def test_an_entity_that_never_had_rows_does_not_block_or_warn_the_raw_gate(home):  # noqa: F811
    from cxw.gate import validate_raw

    _history(home.raw)      # another entity with a normal history, so the gate has something to compare
    _land(home.raw, "hubspot", "deals", 0, 1, _feedback, cursor_before=None)   # first run: no deal at all
    rep = validate_raw("run-1")
    assert rep["status"] == "passed" and rep["errors"] == 0 and rep["warnings"] == 0
    for i in range(8):      # more deltas without a deal than the volume lookback (7)
        _land(home.raw, "hubspot", "deals", 0, 100 + i, _feedback)
        rep = validate_raw(f"run-d{i}")
        assert rep["status"] == "passed" and rep["errors"] == 0 and rep["warnings"] == 0, rep
    _land(home.raw, "hubspot", "deals", 3, 200, _feedback)   # the first deals
    rep = validate_raw("run-2")
    assert rep["status"] == "passed" and rep["errors"] == 0
