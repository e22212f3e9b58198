"""The marts gate audits what changed (issue 20 point 3, cxw/gate/marts_delta.py): where the published generation
allows, row checks read only the changed rows and uniqueness only the rows sharing a key with them - and the verdict
(each expectation's pass / fail, its table, column, condition and count of offending rows) is the full audit's.

Each test publishes a hand-made build the way the pipeline does (the real gate passes it, its run's validation.json
records the check digests; the published file holds the tables and the `publication` record naming that run), then
audits a second build twice, by its changes and whole (`full_audit`), and compares. Real GE, real DuckDB files."""
from __future__ import annotations

import json

import duckdb
import pytest

from cxw.gate import ValidationFailed
from cxw.gate.marts import audit_marts
from cxw.gate.marts_suites import PII_REGEX, PII_REQUIRED_CHARACTERS

END = None  # no KPI table unless a test adds one

REVIEWS = ("create table core.fct_reviews as select * from (values {rows}) "
           "as t(review_key, rating, review_text, city)")
GOOD = ["('r1', 5, 'great', 'Hanoi')", "('r2', 4, 'fine', 'Hue')", "('r3', 1, 'bad', 'Hue')"]


def _build(path, sql: list[str]):
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    for stmt in sql:
        con.execute(stmt)
    con.close()


def _audit(runs, run_id: str, build, published, full: bool = False, end=END) -> dict:
    out = runs / run_id
    try:
        audit_marts(run_id, build, out, published, 0.5, end, full_audit=full)
    except ValidationFailed:
        pass
    return json.loads((out / "validation.json").read_text())


def _publish(runs, run_id: str, build, published) -> dict:
    """The gate passes the build (run ``run_id``), then its tables are published with a record naming the run."""
    rep = _audit(runs, run_id, build, published)
    assert rep["status"] == "passed", rep["failed_checks"]
    published.unlink(missing_ok=True)
    con = duckdb.connect(str(published))
    con.execute(f"attach '{build}' as b (read_only)")
    tables = con.execute("select table_schema, table_name from information_schema.tables "
                         "where table_catalog = 'b' and table_schema in ('core', 'kpi', 'cx')").fetchall()
    for s, t in tables:
        con.execute(f"create schema if not exists {s}")
        con.execute(f"create table {s}.{t} as select * from b.{s}.{t}")
    con.execute("create table publication as select ? as run_id", [run_id])
    con.execute("create table publication_tables (table_name varchar, row_count bigint, fingerprint varchar)")
    from cxw.publish import table_fingerprint

    for s, t in tables:  # as publish records them: the candidate's fingerprint is compared with these
        con.execute("insert into publication_tables values (?, ?, ?)", [f"{s}.{t}", *table_fingerprint(con, f"{s}.{t}")])
    con.close()
    return rep


def _verdict(rep: dict) -> list[tuple]:
    return sorted((r["suite"], r["table"], r["expectation"], r["column"] or "", r["row_condition"] or "",
                   r["severity"], r["success"], r["unexpected_count"] if r["unexpected_count"] is not None else -1,
                   str(r["observed_value"])) for r in rep["results"])


def _both(tmp_path, published_sql: list[str], candidate_sql: list[str], end=END):
    """(changed-rows audit, full audit) of the candidate against the published build."""
    runs, build, pub = tmp_path / "runs", tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _build(build, published_sql)
    _publish(runs, "published-run", build, pub)
    _build(build, candidate_sql)
    changed = _audit(runs, "run-changed", build, pub, end=end)
    full = _audit(runs, "run-full", build, pub, full=True, end=end)
    assert _verdict(changed) == _verdict(full)
    assert (changed["status"], changed["expectations"], changed["failed_checks"], changed["warned_checks"]) == \
        (full["status"], full["expectations"], full["failed_checks"], full["warned_checks"])
    return changed, full


def _failed(rep: dict) -> list[tuple]:
    return sorted((r["expectation"], r["column"], r["unexpected_count"]) for r in rep["results"] if not r["success"])


def reviews(*rows: str) -> list[str]:
    return ["create schema core", REVIEWS.format(rows=", ".join(rows))]


def test_a_bad_new_row_fails_and_only_the_changed_rows_are_read(tmp_path):
    changed, _ = _both(tmp_path, reviews(*GOOD), reviews(*GOOD, "('r4', 9, 'wow', 'Hue')", "('r5', 3, 'ok', 'Hue')"))
    assert _failed(changed) == [("expect_column_values_to_be_between", "rating", 1)]
    audit = changed["table_audits"]["core.fct_reviews"]
    assert (audit["audit"], audit["rows"], audit["rows_audited"]) == ("changed", 5, 2), audit
    assert (changed["rows_total"], changed["rows_audited"], changed["tables_audited_by_changes"]) == (5, 2, 1)


def test_a_row_changed_only_in_a_non_key_column_is_audited(tmp_path):
    changed, _ = _both(tmp_path, reviews(*GOOD), reviews(GOOD[0], GOOD[1], "('r3', 0, 'bad', 'Hue')"))
    assert _failed(changed) == [("expect_column_values_to_be_between", "rating", 1)]
    assert changed["table_audits"]["core.fct_reviews"]["rows_audited"] == 1


def test_a_new_row_with_a_null_key_fails_the_not_null_check(tmp_path):
    changed, _ = _both(tmp_path, reviews(*GOOD), reviews(*GOOD, "(null, 3, 'ok', 'Hue')"))
    assert _failed(changed) == [("expect_column_values_to_not_be_null", "review_key", 1)]


@pytest.mark.parametrize("new", ["('r2', 3, 'other text', 'Hue')", "('r2', 4, 'fine', 'Hue')"],
                         ids=["same-key-other-row", "exact-copy-of-a-published-row"])
def test_a_key_of_a_new_row_duplicating_a_published_row_fails_uniqueness(tmp_path, new):
    changed, _ = _both(tmp_path, reviews(*GOOD), reviews(*GOOD, new))
    assert _failed(changed) == [("expect_column_values_to_be_unique", "review_key", 2)]


def test_unchanged_rows_that_a_warn_check_flags_are_still_reported(tmp_path):
    # free-text PII warns and publishes: the published row keeps warning although it did not change
    old = [*GOOD, "('r9', 2, 'call +84 90 123 4567', 'Hue')"]
    changed, _ = _both(tmp_path, reviews(*old), reviews(*old, "('r4', 3, 'ok', 'Hue')"))
    assert changed["status"] == "passed" and _failed(changed) == [
        ("expect_column_values_to_not_match_regex", "review_text", 1)]
    assert changed["table_audits"]["core.fct_reviews"]["audit"] == "changed"


def test_pii_in_a_new_row_blocks(tmp_path):
    changed, _ = _both(tmp_path, reviews(*GOOD), reviews(*GOOD, "('r4', 3, 'ok', 'jane@example.org')"))
    assert changed["status"] == "failed" and _failed(changed) == [
        ("expect_column_values_to_not_match_regex", "city", 1)]


def test_kpi_freshness_is_judged_every_run_although_the_kpis_did_not_change(tmp_path):
    from datetime import date

    kpis = ["create schema kpi", "create table kpi.kpi_daily as select * from (values ('nps', 10.0, 40, "
            "date '2025-03-01'), ('nps', 20.0, 40, date '2025-03-10')) as t(kpi, value, n, kpi_date)"]
    runs, build, pub = tmp_path / "runs", tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _build(build, kpis)
    rep = _audit(runs, "fresh", build, pub, end=date(2025, 3, 12))
    assert rep["status"] == "passed", rep["failed_checks"]
    changed, _ = _both(tmp_path, kpis, kpis, end=date(2025, 3, 20))  # the same KPIs, 10 days later: stale
    assert changed["table_audits"]["kpi.kpi_daily"]["audit"] == "changed"
    assert _failed(changed) == [("expect_column_min_to_be_between", "_days_before_interval_end", None)]


def test_a_table_new_to_the_publication_or_with_other_columns_is_audited_whole(tmp_path):
    other = ["create table core.fct_support_tickets as select * from (values ('t1', 'Hue')) as t(ticket_id, city)"]
    changed, _ = _both(tmp_path, reviews(*GOOD), [*reviews(*GOOD, "('r4', 3, 'ok', 'Hue')"), *other])
    assert changed["table_audits"]["core.fct_support_tickets"]["audit"] == "full"
    assert changed["table_audits"]["core.fct_support_tickets"]["reason"] == "table not audited for the published " \
                                                                           "generation"
    retyped = ["create schema core", "create table core.fct_reviews as select review_key, rating::double as rating, "
               "review_text, city from (values " + ", ".join([*GOOD, "('r4', 7, 'x', 'Hue')"]) + ") "
               "as t(review_key, rating, review_text, city)"]
    changed, _ = _both(tmp_path, reviews(*GOOD), retyped)
    assert changed["table_audits"]["core.fct_reviews"] == {
        "audit": "full", "reason": "columns or types differ from the published generation", "rows": 4,
        "rows_audited": 4}
    assert _failed(changed) == [("expect_column_values_to_be_between", "rating", 1)]


def test_without_a_passed_gate_record_of_the_published_generation_every_table_is_audited_whole(tmp_path):
    runs, build, pub = tmp_path / "runs", tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _build(build, reviews(*GOOD))
    _publish(runs, "published-run", build, pub)
    (runs / "published-run" / "validation.json").unlink()
    rep = _audit(runs, "next", build, pub)
    assert rep["table_audits"]["core.fct_reviews"]["audit"] == "full"
    pub.unlink()
    rep = _audit(runs, "next2", build, pub)
    assert rep["table_audits"]["core.fct_reviews"]["reason"] == "no published generation"


def test_a_changed_suite_audits_the_table_whole(tmp_path, monkeypatch):
    # the published generation passed a suite without the rating range, with a rating of 9 in it; the suite now
    # has the range: the old row must fail as in a full audit, not be skipped as unchanged
    from cxw.gate import marts_suites

    runs, build, pub = tmp_path / "runs", tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    old = [*GOOD, "('r9', 9, 'meh', 'Hue')"]
    real = marts_suites.SUITES["core.fct_reviews"]
    monkeypatch.setitem(marts_suites.SUITES, "core.fct_reviews", marts_suites.fact_suite("review_key"))
    _build(build, reviews(*old))
    _publish(runs, "published-run", build, pub)
    monkeypatch.setitem(marts_suites.SUITES, "core.fct_reviews", real)
    _build(build, reviews(*old, "('r4', 3, 'ok', 'Hue')"))
    changed = _audit(runs, "run-changed", build, pub)
    full = _audit(runs, "run-full", build, pub, full=True)
    assert changed["table_audits"]["core.fct_reviews"]["reason"] == "checks changed since the published generation"
    assert _verdict(changed) == _verdict(full)
    assert _failed(changed) == [("expect_column_values_to_be_between", "rating", 1)]


def test_the_switch_audits_every_table_whole(tmp_path, monkeypatch):
    from cxw.gate import validate_marts

    runs, build, pub = tmp_path / "runs", tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _build(build, reviews(*GOOD))
    _publish(runs, "published-run", build, pub)
    monkeypatch.setenv("CXW_GATE_FULL_AUDIT", "1")
    rep = validate_marts("switch", build_db=build, published_db=pub, out_dir=runs / "switch")
    assert rep["tables_audited_by_changes"] == 0
    monkeypatch.delenv("CXW_GATE_FULL_AUDIT")
    rep = validate_marts("no-switch", build_db=build, published_db=pub, out_dir=runs / "no-switch")
    assert rep["tables_audited_by_changes"] == 1 and rep["rows_audited"] == 0
    # the table equals the published one (its fingerprint is the recorded one): no row read for the per-row checks
    results = json.loads((runs / "no-switch" / "validation.json").read_text())["results"]
    assert {r["expectation"]: r.get("evaluated", "GE")[:16] for r in results if r["column"] == "rating"} == {
        "expect_column_values_to_be_between": "nothing to judge"}


def test_every_match_of_the_pii_regex_holds_a_character_the_batched_read_keeps():
    import re

    samples = ["jane.doe@example.com", "a@b.co", "+84 90 123 4567", "+4915112345678", "x +1-555-123-4567 y"]
    for s in samples:
        assert re.search(PII_REGEX, s), s
        for ch in PII_REQUIRED_CHARACTERS:
            s = s.replace(ch, "")
        assert not re.search(PII_REGEX, s), s
    # the regex's alternatives each start from a literal of the list (the e-mail's @, the phone's \+)
    assert "@" in PII_REGEX.split("|")[0] and PII_REGEX.split("|")[1].startswith("(?:\\+")


def _ge_alone(tmp_path, build, end=None, previous=None) -> list[tuple]:
    """The verdict of GE alone on every whole table of the build (the gate before issue 20.3): the reference."""
    from cxw.gate.ge import Gate
    from cxw.gate.marts import _string_columns, _table_checks

    gate, out = Gate(tmp_path / "ge-alone", "marts"), []
    con = duckdb.connect(str(build), read_only=True)
    for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall():
        df = con.sql(f"select * from {s}.{t}").to_arrow_table().to_pandas()
        if end is not None and "kpi_date" in df.columns:
            import pandas as pd

            df["_days_before_interval_end"] = (pd.Timestamp(end) - pd.to_datetime(df["kpi_date"])).dt.days
        checks = _table_checks(f"{s}.{t}", list(df.columns), _string_columns(con, s, t), previous or {}, 0.5)
        out += gate.run(f"{s}.{t}", f"{s}.{t}", df, checks, "ge-alone")
    con.close()
    return _verdict({"results": out})


@pytest.mark.parametrize("rows", [GOOD, [*GOOD, "('r4', 9, 'mail a@b.org', '+84 90 123 4567')", "(null, 3, 'x', 'y')"]],
                         ids=["clean", "dirty"])
def test_checks_passed_without_ge_are_what_ge_says(tmp_path, rows):
    # PII checks of columns without '@' / '+' and per-row checks without changed rows pass without GE: the verdict
    # of the whole gate (changed rows or full) equals GE's on the whole tables
    from datetime import date

    kpis = ["create schema kpi", "create table kpi.kpi_daily as select * from (values ('nps', 10.0, 40, "
            "date '2025-03-01', 'all'), ('nps', 200.0, 40, date '2025-03-10', 'x@y.org')) "
            "as t(kpi, value, n, kpi_date, segment)",
            # an empty table without its key column: row count and column existence fail
            "create schema core", "create table core.fct_orders as select 1 as x where false"]
    changed, full = _both(tmp_path, reviews(*GOOD), reviews(*rows))
    if rows is GOOD:  # no '@' / '+' in any text, no changed row
        assert any(r.get("evaluated") for r in changed["results"]) and any(r.get("evaluated") for r in full["results"])
    assert _verdict(full) == _ge_alone(tmp_path, tmp_path / "build.duckdb", previous={"core.fct_reviews": 3})
    runs, build, pub = tmp_path / "runs", tmp_path / "k.duckdb", tmp_path / "none.duckdb"
    _build(build, kpis)
    rep = _audit(runs, "kpis", build, pub, end=date(2025, 3, 12))
    assert _verdict(rep) == _ge_alone(tmp_path / "k", build, end=date(2025, 3, 12))
    assert {r["expectation"] for r in rep["results"] if r.get("evaluated", "").startswith("from the table")} == {
        "expect_table_row_count_to_be_between", "expect_column_to_exist"}
    assert [(r["expectation"], r["column"]) for r in rep["results"] if not r["success"] and r["table"] ==
            "core.fct_orders"] == [("expect_table_row_count_to_be_between", None), ("expect_column_to_exist",
                                                                                    "order_id")]
