"""Every check of the raw gate's suites (cxw/gate/raw_suites.py, cxw/gate/volume.py), table-driven, through the
real gate code (`cxw.gate.Gate`, GX pandas engine) on small frames read the way `validate_raw` reads Parquet (Arrow ->
pandas, int64 as nullable Int64).

The tables below spell out every check literally: the required columns and their GX type per entity
(`REQUIRED_TYPES`), the key each entity must mostly carry (`KEYS`), and the range checks with their bounds and
`mostly` (`RANGES`). `test_raw_suites_hold_exactly_the_checks_of_the_table` fails on a deleted, added or widened
check; the other tests break each check just past its bound (a required column missing, a column of another type,
`mostly` exceeded by one row while exactly `mostly` passes, a value just outside the range) and require the suite to
fail on that check, named by expectation and column. The load-log volume suite is at the end.
"""
from __future__ import annotations

import itertools

import pandas as pd
import pyarrow as pa
import pytest

from cxw.gate.raw_suites import REQUIRED, raw_suite
from cxw.gate.volume import volume_suite

H = {"id": "str", "createdAt": "str", "updatedAt": "str", "archived": "bool"}
REQUIRED_TYPES: dict[str, dict[str, str]] = {
    "odoo__res_country": {"id": "int64", "code": "str"},
    "odoo__res_currency": {"id": "int64", "name": "str"},
    "odoo__crm_team": {"id": "int64", "name": "str"},
    "odoo__res_partner": {"id": "int64", "email": "str", "write_date": "datetime64"},
    "odoo__product_category": {"id": "int64", "name": "str", "write_date": "datetime64"},
    "odoo__product_template": {"id": "int64", "name": "str", "list_price": "float64", "write_date": "datetime64"},
    "odoo__product_product": {"id": "int64", "product_tmpl_id": "int64", "write_date": "datetime64"},
    "odoo__sale_order": {"id": "int64", "partner_id": "int64", "date_order": "datetime64", "state": "str",
                         "amount_untaxed": "float64", "amount_total": "float64", "write_date": "datetime64"},
    "odoo__sale_order_line": {"id": "int64", "order_id": "int64", "product_id": "int64", "price_subtotal": "float64",
                              "write_date": "datetime64"},
    "odoo__stock_picking_type": {"id": "int64", "code": "str"},
    "odoo__stock_picking": {"id": "int64", "sale_id": "int64", "state": "str", "scheduled_date": "datetime64",
                            "write_date": "datetime64"},
    "hubspot__contacts": {**H, "properties__email": "str"},
    "hubspot__companies": H,
    "hubspot__deals": H,
    "hubspot__tickets": {**H, "properties__createdate": "str"},
    "hubspot__feedback_submissions": {**H, "properties__hs_survey_type": "str", "properties__hs_value": "str",
                                      "properties__hs_submission_timestamp": "str"},
    "hubspot__associations": {"from_type": "str", "from_id": "str", "to_type": "str", "to_id": "str"},
    "hubspot__email_events": {"id": "str", "created": "int64", "type": "str", "recipient": "str"},
    "ga4__events": {"event_date": "str", "event_timestamp": "str", "event_name": "str", "user_pseudo_id": "str",
                    "_export_date": "date"},
    "google_reviews__reviews": {"reviewId": "str", "starRating": "str", "createTime": "str", "updateTime": "str"},
    "trustpilot__reviews": {"id": "str", "stars": "int64", "createdAt": "str"},
    "review_files__reviews": {"site": "str", "review_id": "str", "rating": "str", "created_at": "str",
                              "rating_min": "float64", "rating_max": "float64"},
    "hubspot__contacts_archived": H, "hubspot__companies_archived": H, "hubspot__deals_archived": H,
    "hubspot__tickets_archived": H, "hubspot__feedback_submissions_archived": H,
}
KEYS = {name: ("from_id" if name == "hubspot__associations" else "event_name" if name == "ga4__events"
               else "reviewId" if name == "google_reviews__reviews"
               else "review_id" if name == "review_files__reviews" else "id") for name in REQUIRED_TYPES}
STARS = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "STAR_RATING_UNSPECIFIED"]
EXPORT_DAY = "20250301"
FEEDBACK = ("hubspot__feedback_submissions", "hubspot__feedback_submissions_archived")
# (entity, expectation, column, bounds, rows in the frame, one bad value): `mostly` of `rows` bad rows pass exactly,
# one more fails.
RANGES = [
    ("trustpilot__reviews", "ExpectColumnValuesToBeBetween", "stars", {"min_value": 1, "max_value": 5, "mostly": 0.95},
     20, 0),
    ("trustpilot__reviews", "ExpectColumnValuesToBeBetween", "stars", {"min_value": 1, "max_value": 5, "mostly": 0.95},
     20, 6),
    ("google_reviews__reviews", "ExpectColumnValuesToBeInSet", "starRating", {"value_set": STARS, "mostly": 0.95},
     20, "ZERO"),
    *[(f, "ExpectColumnValuesToBeInSet", "properties__hs_survey_type",
       {"value_set": ["NPS", "CSAT", "CES"], "mostly": 0.99}, 100, "NPS2") for f in FEEDBACK],
    *[(f, "ExpectColumnValuesToMatchRegex", "properties__hs_value",
       {"regex": r"^\s*\d{1,2}(?:\.0+)?\s*$", "mostly": 0.95}, 20, "4.5/5") for f in FEEDBACK],
    ("ga4__events", "ExpectColumnValuesToBeInSet", "event_date", {"value_set": [EXPORT_DAY], "mostly": 0.99},
     100, "20250302"),
    ("review_files__reviews", "ExpectColumnValuesToMatchRegex", "created_at",
     {"regex": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", "mostly": 1.0}, 20, "01.03.2025 10:00"),
]
# Columns a suite reads beyond its required ones (validate_raw reads them when the files have them).
EXTRA_COLUMNS = {"hubspot__feedback_submissions_archived": {"properties__hs_survey_type": "str",
                                                            "properties__hs_value": "str"}}

_ARROW = {"str": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
          "datetime64": pa.timestamp("us"), "date": pa.date32()}


def _valid_value(col: str, gx_type: str, i: int):
    if col == "stars":
        return 1 + i % 5
    if col == "starRating":
        return STARS[i % 6]
    if col == "properties__hs_survey_type":
        return ["NPS", "CSAT", "CES"][i % 3]
    if col == "properties__hs_value":
        return str(i % 11)
    if col == "event_date":
        return EXPORT_DAY
    if col == "created_at":
        return f"2025-03-01T10:{i % 60:02d}:00.000000Z"
    import datetime as dt

    return {"str": f"v{i}", "int64": i + 1, "float64": i + 0.5, "bool": i % 2 == 0,
            "datetime64": dt.datetime(2025, 3, 1, 10, 0) + dt.timedelta(minutes=i),
            "date": dt.date(2025, 3, 1)}[gx_type]


def _columns(name: str) -> dict[str, str]:
    return {**REQUIRED_TYPES[name], **EXTRA_COLUMNS.get(name, {})}


def _frame(name: str, n: int = 20, types: dict[str, str] | None = None, drop: bool = False,
           patch: dict[str, dict[int, object]] | None = None) -> pd.DataFrame:
    """n valid rows of `name` as validate_raw reads them (Arrow -> pandas, int64 as Int64); `types` overrides
    column types (the values are then of that type), `drop` leaves out every required column, `patch` sets
    {column: {row: value}} (None: null) before the Arrow conversion, so the column keeps its type."""
    cols = _columns(name)
    arrays = {}
    for col, t in cols.items():
        if drop and col in REQUIRED_TYPES[name]:
            continue
        t2 = (types or {}).get(col, t)
        values = [_valid_value(col, t, i) for i in range(n)] if t2 == t else \
            [_valid_value("", t2, i) for i in range(n)]
        for i, v in (patch or {}).get(col, {}).items():
            values[i] = v
        arrays[col] = pa.array(values, _ARROW[t2])
    if not arrays:
        return pd.DataFrame(index=range(n))
    return pa.table(arrays).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _ident(expectation, column, bounds) -> tuple:
    return (expectation, column, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in bounds.items())))


def _check_ident(c) -> tuple:
    kw = c.kwargs
    b = {k: kw[k] for k in ("min_value", "max_value", "mostly", "value_set", "regex", "type_") if k in kw}
    return _ident(c.expectation, kw.get("column") or kw.get("column_A"), b)


def _expected(name: str) -> set[tuple]:
    want = set()
    for col, t in REQUIRED_TYPES[name].items():
        want.add(_ident("ExpectColumnToExist", col, {}))
        want.add(_ident("ExpectColumnValuesToBeOfType", col, {"type_": t}))
    want.add(_ident("ExpectColumnValuesToNotBeNull", KEYS[name], {"mostly": 0.95}))
    want |= {_ident(e, c, b) for n, e, c, b, *_ in RANGES if n == name}
    return want


def _suite(name: str, columns) -> list:
    return raw_suite(name, list(columns), [EXPORT_DAY] if name == "ga4__events" else None)


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    from cxw.gate import Gate

    return Gate(tmp_path_factory.mktemp("raw_gate_checks"), "raw")


_counter = itertools.count()


def _failed(gate, name: str, df: pd.DataFrame) -> set[tuple]:
    results = gate.run(f"raw.{name}#{next(_counter)}", f"raw.{name}", df, _suite(name, df.columns), "test")
    return {(r["expectation"], r["column"]) for r in results if not r["success"] and r["severity"] == "error"}


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_raw_suites_hold_exactly_the_checks_of_the_table():
    assert set(REQUIRED) == set(REQUIRED_TYPES)
    for name in REQUIRED_TYPES:
        checks = _suite(name, _columns(name))
        got = [_check_ident(c) for c in checks]
        assert len(got) == len(set(got)), f"{name}: a check is listed twice"
        want = _expected(name)
        assert set(got) == want, (f"{name}: missing from the suite {sorted(want - set(got), key=str)}; not in the "
                                  f"test's table (new or changed bound) {sorted(set(got) - want, key=str)}")
        assert all(c.severity == "error" for c in checks), f"{name}: a check was downgraded to warn"


@pytest.mark.parametrize("name", sorted(REQUIRED_TYPES))
def test_raw_suite_fails_on_each_missing_or_retyped_required_column_and_on_missing_keys(gate, name):
    req = REQUIRED_TYPES[name]
    key = KEYS[name]
    # valid rows pass, also with exactly 5% of the rows (1 of 20) without a key
    assert _failed(gate, name, _frame(name, patch={key: {0: None}})) == set()
    # one more row without a key (10%) fails the key check, and only it
    assert _failed(gate, name, _frame(name, patch={key: {0: None, 1: None}})) == {("expect_column_values_to_not_be_null", key)}
    # every required column missing: each is named
    assert _failed(gate, name, _frame(name, drop=True)) == {("expect_column_to_exist", c) for c in req}
    # every required column of another type: each type check fails (checks reading the retyped column may fail too)
    other = {"str": "int64", "int64": "str", "float64": "str", "bool": "str", "datetime64": "str", "date": "str"}
    failed = _failed(gate, name, _frame(name, types={c: other[t] for c, t in req.items()}))
    assert {("expect_column_values_to_be_of_type", c) for c in req} <= failed
    assert {c for _, c in failed} <= set(req), failed


@pytest.mark.parametrize("row", RANGES, ids=[f"{r[0]}:{r[2]}={r[5]}" for r in RANGES])
def test_raw_range_check_fails_one_row_past_mostly_and_passes_at_exactly_mostly(gate, row):
    name, expectation, column, bounds, n, bad_value = row
    allowed = round(n * (1 - bounds["mostly"]))           # bad rows `mostly` tolerates: 1 of 20 at 0.95, 1 of 100 at 0.99
    df = _frame(name, n, patch={column: {i: bad_value for i in range(allowed)}})
    assert _failed(gate, name, df) == set(), f"{allowed} bad row(s) of {n} must pass (mostly {bounds['mostly']})"
    df = _frame(name, n, patch={column: {i: bad_value for i in range(allowed + 1)}})
    assert _failed(gate, name, df) == {(_snake(expectation), column)}


# ---------------------------------------------------------------------------------------------- load-log volume

def test_volume_suite_is_the_table():
    got = {(_check_ident(c), c.kwargs.get("row_condition"), c.kwargs.get("column_B"), c.kwargs.get("or_equal"),
            c.severity) for c in volume_suite()}
    assert got == {(_ident("ExpectColumnPairValuesAToBeGreaterThanB", "rows", {}), "blocking", "min_rows", True,
                    "error"),
                   (_ident("ExpectColumnPairValuesAToBeGreaterThanB", "rows", {}), "~blocking", "min_rows", True,
                    "warn")}


@pytest.mark.parametrize("blocking,severity", [(True, "error"), (False, "warn")])
def test_volume_check_fails_one_row_below_its_minimum(gate, blocking, severity):
    def run(rows):
        df = pd.DataFrame({"rows": [rows, 500], "min_rows": [11, 11], "blocking": [blocking, not blocking]})
        res = gate.run(f"raw.load_log#{next(_counter)}", "load log", df, volume_suite(), "test")
        return [(r["row_condition"], r["severity"]) for r in res if not r["success"]]

    assert run(11) == []                                   # exactly the minimum passes
    assert run(10) == [("blocking" if blocking else "~blocking", severity)]
