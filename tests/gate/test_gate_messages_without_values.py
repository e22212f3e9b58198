"""The gate's messages, results file and logs name suite, expectation, table, column and counts — never a value of
the data (issue 15 point 4): not an observed aggregate of an identifying column (a most common contact id, the max
of a numeric id), not the value pandas / GX quote in an error ("Could not convert 'jane@…' to numeric"). Through the
real gate (`cxw.gate.Gate`, GX pandas engine) and its reporting (`finish`: the ValidationFailed text, the
warnings it logs, validation.json)."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from cxw.gate.marts_suites import Check

PLANTED_EMAIL = "jane.planted@example.org"
PLANTED_PHONE = "+49 170 5550199"
PLANTED_ID = 9137451
PLANTED = (PLANTED_EMAIL, PLANTED_PHONE, str(PLANTED_ID), "9 137 451", "9137451.0")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "contact_id": [PLANTED_ID, PLANTED_ID, 12],                                  # a numeric identifier
        "email": pd.Series([PLANTED_EMAIL, 5, "a@b.example"], dtype=object),         # dirt: mixed types
        "phone": pd.Series([PLANTED_PHONE, PLANTED_PHONE, 3.5], dtype=object),
        "hs_object_id": [str(PLANTED_ID), str(PLANTED_ID), "12"],
        "n": [1, 2, 3],
    })


CHECKS = [
    # observed value = the column's max / most common value: identifiers
    Check("ExpectColumnMaxToBeBetween", {"column": "contact_id", "min_value": 0, "max_value": 100}),
    Check("ExpectColumnMostCommonValueToBeInSet", {"column": "hs_object_id", "value_set": ["1"]}),
    # GX / pandas quote the value they could not convert (a per-metric exception)
    Check("ExpectColumnMeanToBeBetween", {"column": "email", "min_value": 0, "max_value": 1}, severity="warn"),
    Check("ExpectColumnStdevToBeBetween", {"column": "phone", "min_value": 0, "max_value": 1}),
    # what stays: counts, and a number of a column that identifies no one
    Check("ExpectColumnValuesToBeBetween", {"column": "n", "min_value": 2}),
    Check("ExpectColumnMaxToBeBetween", {"column": "n", "min_value": 10, "max_value": 20}),
]


def test_gate_failure_names_checks_and_counts_never_values(tmp_path, caplog):
    from cxw.gate.ge import Gate, ValidationFailed, finish as _finish

    caplog.set_level(logging.DEBUG)
    gate = Gate(tmp_path / "run", "marts")
    results = gate.run("core.planted", "core.planted", _frame(), CHECKS, "run-planted")
    with pytest.raises(ValidationFailed) as ei:
        _finish("marts", "run-planted", results, tmp_path / "run", None, 0.0)
    msg = str(ei.value)
    stored = (tmp_path / "run" / "validation.json").read_text()
    text = "\n".join([msg, stored, caplog.text])
    assert [p for p in PLANTED if p in text] == [], msg
    # still useful: which checks on which columns failed, with counts and safe numbers
    for col in ("contact_id", "hs_object_id", "phone", "n"):
        assert f"column {col} " in msg, (col, msg)
    assert "column email" in caplog.text  # the warn-severity check is logged
    assert "1 offending row(s) of 3" in msg            # n >= 2: one row below
    assert "observed 3" in msg                          # max of n: a number of a column that identifies no one
    assert "to numeric" in text                         # the kind of error, its value cut out
    report = json.loads(stored)
    assert report["status"] == "failed" and report["errors"] == 5 and report["warnings"] == 1


def test_the_data_docs_of_a_run_show_no_value_of_the_data(tmp_path):
    """GE's Data Docs (written under the run directory) rendered each result's observed value, its exception message
    and traceback: the max of contact_id, the most common hs_object_id, the e-mail pandas could not convert. They
    now show what the gate reports (a safe number, the masked error) - the checks, columns and counts stay."""
    from cxw.gate import Gate

    gate = Gate(tmp_path / "run", "marts")
    gate.run("core.planted", "core.planted", _frame(), CHECKS, "run-planted")
    index = gate.build_docs()
    pages = [p for p in (tmp_path / "run" / "data_docs").rglob("*") if p.is_file() and p.suffix in (".html", ".json")]
    assert index.exists() and len(pages) >= 2
    text = "\n".join(p.read_text(errors="replace") for p in pages)
    assert [p for p in PLANTED if p in text] == []
    # still a useful report: the validation page names the checked columns, and the masked error stays
    [page] = [p for p in pages if "validations" in p.parts]
    html = page.read_text()
    assert all(col in html for col in ("contact_id", "hs_object_id", "email", "phone")), html[:2000]
    assert "to numeric" in html
