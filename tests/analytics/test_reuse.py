"""CXW_ANALYZE_EVERY=day (issue 20, cxw/analytics/reuse.py): the analyses run once per as-of date; a later run of that
date with the same record keeps the earlier run's tables and says whose they are. The traps: an as-of date, code,
seed or dbt-input change, missing output tables and CXW_FORCE_BUILD compute again; a failed analyze leaves no record;
an erasure removes the record, so the next run refits without the person.

The real runner on a small DuckDB build database with one tiny analysis of this module (a person table and an
aggregate, both as of the run's date): no demo world, no DAG run. The registered analyses' own tests are beside it."""

from __future__ import annotations

import importlib.util
from datetime import date, datetime, timezone

import duckdb
import pandas as pd
import pytest

from cxw.analytics import Analysis, AnalysisContext, reuse
from cxw.analytics.runner import run_analyses

D = date(2026, 12, 7)
FAIL = {"now": False}  # set to make the analysis fail (a failed analyze)


def _run(read, ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    if FAIL["now"]:
        raise RuntimeError("planted failure")
    people = read(f"select person_sk, score from {ctx.relation('int_people')} "
                  f"where seen_date <= cast('{ctx.as_of.isoformat()}' as date) order by person_sk")
    summary = pd.DataFrame({"n_persons": [len(people)], "mean_score": [float(people.score.mean())],
                            "as_of": [ctx.as_of.isoformat()], "seed": [ctx.seed]})
    return {"cx_test_people": people, "cx_test_summary": summary}


TINY = Analysis(name="tiny", outputs=("cx_test_people", "cx_test_summary"), run=_run)


def _db(path, rows=(("p1", 9.0, D), ("p2", 3.0, D), ("p3", 7.0, D))):
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists intermediate")
        con.execute("create or replace table intermediate.int_people (person_sk varchar, score double, seen_date date)")
        con.executemany("insert into intermediate.int_people values (?, ?, ?)", [list(r) for r in rows])
    finally:
        con.close()
    return path


def _sql(path, sql: str, params=()):
    con = duckdb.connect(str(path))
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _people(path) -> list[str]:
    return [p for p, in _sql(path, "select person_sk from cx.cx_test_people order by 1")]


def _record(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return reuse.read(con)
    finally:
        con.close()


def analyse(db, as_of=D, run_id="r1", every="day", **kw):
    return run_analyses("duckdb", as_of=as_of, build_db=db, analyses=kw.pop("analyses", (TINY,)), every=every,
                        run_id=run_id, **kw)


def test_the_setting_defaults_to_day_for_an_hourly_schedule_and_run_for_a_daily_one():
    from cxw.settings import Settings

    assert reuse.analyze_every(Settings.from_env({"CXW_SCHEDULE": "hourly"})) == "day"
    assert reuse.analyze_every(Settings.from_env({})) == "run"
    assert reuse.analyze_every(Settings.from_env({"CXW_SCHEDULE": "hourly", "CXW_ANALYZE_EVERY": "run"})) == "run"
    assert reuse.analyze_every(Settings.from_env({"CXW_ANALYZE_EVERY": " Day "})) == "day"
    with pytest.raises(ValueError, match="CXW_ANALYZE_EVERY"):
        reuse.analyze_every(Settings.from_env({"CXW_ANALYZE_EVERY": "hourly"}))


def test_a_later_run_of_the_same_as_of_date_keeps_the_tables_and_says_whose_and_a_new_date_computes(tmp_path):
    from cxw.summary import build_summary, render

    db = _db(tmp_path / "build.duckdb")
    first = analyse(db, as_of=datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc), run_id="hourly-00")
    assert first["tiny"] == {"cx_test_people": 3, "cx_test_summary": 1} and first["as_of"] == D.isoformat()
    assert "no record" in first["decision"]
    rec = _record(db)
    assert rec["meta"]["as_of"] == "2026-12-07" and rec["meta"]["run_id"] == "hourly-00"
    # the table says as of when it was computed (the published file carries the description)
    [(comment,)] = _sql(db, "select comment from duckdb_tables() where table_name = 'cx_test_summary'")
    assert "Computed as of 2026-12-07" in comment

    _sql(db, "insert into intermediate.int_people values ('p4', 1.0, ?)", [D])  # a later hour's rows
    second = analyse(db, as_of=datetime(2026, 12, 7, 5, 0, tzinfo=timezone.utc), run_id="hourly-05")
    assert "tiny" not in second and second["kept_from"]["run_id"] == "hourly-00"
    assert second["kept_from"]["as_of"] == "2026-12-07" and "computed as of 2026-12-07" in second["decision"]
    assert _people(db) == ["p1", "p2", "p3"]  # the earlier run's tables stay for validate and publish
    assert _record(db)["meta"]["run_id"] == "hourly-00"
    # the run summary does not claim the analyses are this run's
    [line] = [l for l in render(build_summary("hourly-05", [], None, None, None, None, analyses=second)).splitlines()
              if l.startswith("Analyses")]
    assert line.startswith("Analyses: kept from run hourly-00 (as of 2026-12-07, computed ")

    every_run = analyse(db, run_id="hourly-05b", every="run")  # CXW_ANALYZE_EVERY=run: every run computes
    assert every_run["tiny"]["cx_test_people"] == 4 and "CXW_ANALYZE_EVERY=run" in every_run["decision"]
    _sql(db, "insert into intermediate.int_people values ('p5', 1.0, ?)", [date(2026, 12, 8)])
    assert "kept_from" in analyse(db, run_id="hourly-06")
    nextday = analyse(db, as_of=date(2026, 12, 8), run_id="hourly-next")
    assert nextday["tiny"]["cx_test_people"] == 5
    assert "as-of date changed: 2026-12-07 -> 2026-12-08" in nextday["decision"]
    assert _record(db)["meta"]["as_of"] == "2026-12-08"


def test_a_failed_analyze_leaves_no_record_and_the_next_run_computes(tmp_path, monkeypatch):
    db = _db(tmp_path / "build.duckdb")
    analyse(db)
    monkeypatch.setitem(FAIL, "now", True)
    with pytest.raises(RuntimeError, match="planted failure"):
        analyse(db, as_of=date(2026, 12, 8), run_id="r2")
    assert _record(db) is None
    monkeypatch.setitem(FAIL, "now", False)
    again = analyse(db, run_id="r3")  # the tables of r1 are still there, but nothing vouches for them
    assert "tiny" in again and "no record" in again["decision"]


def test_a_change_of_seed_dbt_inputs_analyses_or_code_and_missing_tables_compute_again(tmp_path):
    from cxw import dbt_select

    db = _db(tmp_path / "build.duckdb")
    analyse(db)
    assert "kept_from" in analyse(db)
    seeded = analyse(db, seed=20)
    assert "tiny" in seeded and "the seed" in seeded["decision"]
    assert "kept_from" in analyse(db, seed=20)
    forced = analyse(db, seed=20, force=True)
    assert "tiny" in forced and forced["decision"] == "CXW_FORCE_BUILD=1"

    def dbt_built_from(start: str, end: str, project: str = "p1") -> None:  # cxw.dbt_select's record of dbt_build
        con = duckdb.connect(str(db))
        try:
            dbt_select.write_record(con, dbt_select.build_inputs(
                ["build", *kpi_window_vars([start, end])],
                {"CXW_KPI_WINDOW_START": start, "CXW_KPI_WINDOW_END": end}) | {"project": project}, {})
        finally:
            con.close()

    from cxw.dbt import kpi_window_vars

    dbt_built_from("2025-01-01", "2026-12-07")  # a daily run's build, or an hourly run's ending at midnight
    dbt = analyse(db, seed=20)
    assert "tiny" in dbt and "dbt build" in dbt["decision"]
    assert "kept_from" in analyse(db, seed=20)
    # the next hours of the day: the KPI window ends at the next midnight (the day so far) - data, not a setting
    dbt_built_from("2025-01-01", "2026-12-08")
    assert "kept_from" in analyse(db, seed=20)
    dbt_built_from("2025-01-01", "2026-12-20")  # an explicit other window end: a setting
    assert "dbt build" in analyse(db, seed=20)["decision"]
    dbt_built_from("2025-03-01", "2026-12-08")  # the window's start
    assert "dbt build" in analyse(db, seed=20)["decision"]
    dbt_built_from("2025-03-01", "2026-12-08", project="p2")  # the dbt project's files (models, dbt vars)
    assert "dbt build" in analyse(db, seed=20)["decision"]
    assert "kept_from" in analyse(db, seed=20)

    other = Analysis(name="tiny_too", outputs=("cx_test_other",),
                     run=lambda read, ctx: {"cx_test_other": pd.DataFrame({"x": [1]})})
    both = analyse(db, seed=20, analyses=(TINY, other))
    assert "tiny_too" in both and "the analyses / their tables" in both["decision"]
    assert "kept_from" in analyse(db, seed=20, analyses=(TINY, other))

    _sql(db, "drop table cx.cx_test_other")
    missing = analyse(db, seed=20, analyses=(TINY, other))
    assert "tiny" in missing and "output tables missing: cx_test_other" in missing["decision"]

    # the analysis' own code (its module, here one outside the package) changes: computed again
    src = tmp_path / "tiny_module.py"

    def module(comment: str) -> Analysis:
        src.write_text(f"# {comment}\nimport pandas as pd\nfrom cxw.analytics import Analysis\n"
                       "def run(read, ctx):\n    return {'cx_test_mod': pd.DataFrame({'x': [1]})}\n"
                       "ANALYSIS = Analysis(name='mod', outputs=('cx_test_mod',), run=run)\n")
        spec = importlib.util.spec_from_file_location(f"tiny_module_{comment}", src)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.ANALYSIS

    analyse(db, analyses=(module("v1"),))
    assert "kept_from" in analyse(db, analyses=(module("v1"),))
    changed = analyse(db, analyses=(module("v2"),))
    assert "mod" in changed and "code" in changed["decision"]


def test_an_erasure_removes_the_record_so_the_next_run_refits_without_the_person(tmp_path, monkeypatch):
    """cxw.erase_stores.rebuild_and_republish with its dbt rebuild replaced by what it does to the marts (the
    person's rows gone) and the raw reload by nothing: the next analyze of the same as-of date computes again."""
    import cxw.dbt
    import cxw.loader
    from cxw.config import paths
    from cxw.erase_stores import rebuild_and_republish

    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    db = paths().build_db
    db.parent.mkdir(parents=True)
    _db(db)
    assert analyse(db)["tiny"]["cx_test_people"] == 3

    def dbt_rebuild(args):
        _sql(db, "delete from intermediate.int_people where person_sk = 'p1'")
        return {"returncode": 0, "seconds": 0.0}

    monkeypatch.setattr(cxw.loader, "load_into_duckdb", lambda *a, **k: None)
    monkeypatch.setattr(cxw.dbt, "run_dbt", dbt_rebuild)
    rebuild_and_republish([], "test-erasure", {"p1"})
    assert _record(db) is None
    after = analyse(db, run_id="r2")
    assert "tiny" in after and "no record" in after["decision"]
    assert _people(db) == ["p2", "p3"]
    assert _sql(db, "select n_persons, mean_score from cx.cx_test_summary") == [(2, 5.0)]


def test_a_failed_marts_gate_removes_the_record_so_the_next_run_computes_from_the_marts_that_pass(tmp_path,
                                                                                                  monkeypatch):
    """cxw.tasks.validate (the DAG's validate task) with the gate replaced by its verdict: a passed gate keeps the
    record, a failed one removes it (the analyses kept all day would otherwise be those of the rejected marts)."""
    import cxw.gate
    from cxw import tasks
    from cxw.config import paths
    from cxw.gate.ge import ValidationFailed

    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    db = paths().build_db
    db.parent.mkdir(parents=True)
    analyse(_db(db))
    monkeypatch.setattr(cxw.gate, "validate_marts", lambda *a, **k: {"status": "passed"})
    assert tasks.validate("r1") == {"status": "passed"} and _record(db) is not None

    def failed(*a, **k):
        raise ValidationFailed("marts gate: 1 error")

    monkeypatch.setattr(cxw.gate, "validate_marts", failed)
    with pytest.raises(ValidationFailed):
        tasks.validate("r1")
    assert _record(db) is None
    assert "no record" in analyse(db, run_id="r2")["decision"]
