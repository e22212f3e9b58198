"""The pipeline's dbt build runs only what the raw tables that changed since the last successful build feed
(cxw.dbt_select, issue 20.2), and that gives the same tables as building everything; any other change builds in full.

On the hand-made raw fixture (tests/dbt/raw_fixture.py), the project cut to `+fct_orders` (15 models of four sources,
so the test stays cheap): the first loads are built and recorded; then the held-back second load of ONE raw table
(raw_odoo.sale_order) arrives. The plan selects `source:odoo.sale_order+`; the selected build's tables equal those of
a full build of a copy (count + sum of row hashes, as the bench's and publish's fingerprint), and dbt ran only nodes
downstream of that source. The fall-backs: other --vars, a changed project file, no record, CXW_DBT_SELECT=full, a
changed raw table no dbt source declares -> full.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env  # noqa: E402

from cxw import dbt_select  # noqa: E402
from cxw.config import DBT_PROJECT_DIR  # noqa: E402
from cxw.publish import table_fingerprint  # noqa: E402

SCOPE = "+fct_orders"
VARS = ["--vars", json.dumps({"kpi_window_start": "", "kpi_window_end": "2025-05-01"})]
ARGS = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test", *VARS]
ENV = {"CXW_DBT_TARGET": "", "CXW_PII_SALT": "x"}
CHANGED = "raw_odoo.sale_order"


def _build(env: dict, plan: dict) -> None:
    """The pipeline's build (``plan``'s selection), cut to SCOPE: each selector intersected with it."""
    select = [f"{s},{SCOPE}" for s in plan["select"]] if plan["mode"] == "selected" else [SCOPE]
    _dbt(env, *ARGS, "--select", *select)


def _plan(db: Path, env: dict, inputs: dict, **kw) -> dict:
    con = duckdb.connect(str(db))
    try:
        return dbt_select.plan(con, inputs, Path(env["DBT_TARGET_PATH"]) / "manifest.json", **kw)
    finally:
        con.close()


def _record(db: Path, inputs: dict, plan: dict) -> None:
    con = duckdb.connect(str(db))
    try:
        dbt_select.write_record(con, inputs, plan["raw_keys"])
    finally:
        con.close()


def _fps(db: Path) -> dict:
    """Fingerprint of every table and view dbt built (all schemas but raw, _cxw and the held rows)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rels = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
            "and table_schema not like 'raw\\_%' escape '\\' and table_schema not in ('_cxw', 'main')").fetchall()]
        return {r: table_fingerprint(con, r) for r in sorted(rels)}
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture's first loads built (SCOPE) and recorded as the pipeline does; the second loads held back."""
    tmp = tmp_path_factory.mktemp("dbt_select")
    db = tmp / "build.duckdb"
    raw_fixture.build(db, boundary_rows=True)
    con = duckdb.connect(str(db))
    held = raw_fixture.hold_back_second_loads(con)
    con.close()
    env = _env(tmp, db)
    inputs = dbt_select.build_inputs(ARGS, ENV)
    first = _plan(db, env, inputs)
    assert first["mode"] == "full" and first["reason"] == "no record of the last successful build"
    _build(env, first)
    _record(db, inputs, first)
    return tmp, db, env, inputs, held


def test_a_change_to_one_raw_table_builds_only_its_downstream_and_equals_a_full_build(built):
    tmp, db, env, inputs, held = built
    con = duckdb.connect(str(db))
    raw_fixture.restore_held_loads(con, {CHANGED: held[CHANGED]})
    con.close()
    before = _fps(db)
    plan = _plan(db, env, inputs)
    assert plan["mode"] == "selected", plan["reason"]
    assert plan["changed"] == ["odoo.sale_order"] and plan["select"] == ["source:odoo.sale_order+"]
    full_db = tmp / "full" / "build.duckdb"
    full_db.parent.mkdir()
    shutil.copyfile(db, full_db)
    full_env = _env(full_db.parent, full_db)
    _build(env, plan)
    _build(full_env, {"mode": "full", "select": []})
    selected, full = _fps(db), _fps(full_db)
    assert selected and selected == full
    assert selected["core.fct_orders"] != before["core.fct_orders"]  # the new load changed what the test compares
    # dbt ran only nodes downstream of the source, and fewer than the full build
    manifest = json.loads((Path(env["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    downstream, todo = set(), ["source.cx_warehouse.odoo.sale_order"]
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child not in downstream:
                downstream.add(child)
                todo.append(child)
    ran, ran_full = (_ran(e) for e in (env, full_env))
    assert ran and ran <= downstream, sorted(ran - downstream)
    assert "model.cx_warehouse.stg_odoo__sale_orders" in ran and "model.cx_warehouse.fct_orders" in ran
    assert "model.cx_warehouse.stg_hubspot__contacts" in ran_full - ran
    assert "model.cx_warehouse.stg_odoo__res_partners" in ran_full - ran
    print(f"selected build: {len(ran)} nodes, full build: {len(ran_full)} nodes")
    # recorded again: the next build with nothing new builds in full (a rebuild was asked for)
    _record(db, inputs, plan)
    again = _plan(db, env, inputs)
    assert again["mode"] == "full" and again["reason"].startswith("no raw table changed")


def _ran(env: dict) -> set[str]:
    """The nodes of the last dbt run (not the on-run-start hooks, which every run has)."""
    results = json.loads((Path(env["DBT_TARGET_PATH"]) / "run_results.json").read_text())["results"]
    return {r["unique_id"] for r in results if not r["unique_id"].startswith("operation.")}


@pytest.fixture()
def small(built, tmp_path):
    """A build database of two raw tables, recorded; the manifest of the fixture's build."""
    env = built[2]
    db = tmp_path / "small.duckdb"
    con = duckdb.connect(str(db))
    for t in ("raw_odoo.sale_order", "raw_hubspot.contacts"):
        con.execute(f"create schema if not exists {t.split('.')[0]}")
        con.execute(f"create table {t} as select 1 as id, 'a' as _load_id")
    con.close()
    inputs = dbt_select.build_inputs(ARGS, ENV)
    _record(db, inputs, _plan(db, env, inputs))
    return db, env, inputs


def _append(db: Path, table: str) -> None:
    con = duckdb.connect(str(db))
    con.execute(f"insert into {table} values (2, 'b')")
    con.close()


def test_changed_raw_tables_are_each_selected(small):
    db, env, inputs = small
    assert _plan(db, env, inputs)["mode"] == "full"  # nothing changed
    _append(db, "raw_odoo.sale_order")
    _append(db, "raw_hubspot.contacts")
    plan = _plan(db, env, inputs)
    assert plan["mode"] == "selected", plan["reason"]
    assert plan["select"] == ["source:hubspot.contacts+", "source:odoo.sale_order+"]
    assert dbt_select.selection_args(plan) == ["--select", *plan["select"]]


def test_other_vars_build_in_full(small):
    db, env, inputs = small
    _append(db, "raw_odoo.sale_order")
    assert _plan(db, env, inputs)["mode"] == "selected"
    other = dbt_select.build_inputs(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test", "--vars",
         json.dumps({"kpi_window_start": "", "kpi_window_end": "2025-05-02"})], ENV)
    plan = _plan(db, env, other)
    assert plan["mode"] == "full" and "--vars" in plan["reason"]
    salt = _plan(db, env, dbt_select.build_inputs(ARGS, {**ENV, "CXW_PII_SALT": "y"}))
    assert salt["mode"] == "full" and "settings" in salt["reason"]


def test_a_changed_project_file_builds_in_full(small, tmp_path):
    db, env, inputs = small
    _append(db, "raw_odoo.sale_order")
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", ".*"))
    same = dbt_select.build_inputs(ARGS, ENV, project)
    assert same["project"] == dbt_select.build_inputs(ARGS, ENV)["project"]
    # dbt's own state (target/, logs/) is not the project
    (project / "target").mkdir()
    (project / "target" / "partial_parse.msgpack").write_bytes(b"x")
    assert dbt_select.build_inputs(ARGS, ENV, project)["project"] == same["project"]
    macro = project / "macros" / "kpi.sql"
    macro.write_text(macro.read_text() + "\n{# changed #}\n")
    changed = dbt_select.build_inputs(ARGS, ENV, project)
    plan = _plan(db, env, changed)
    assert plan["mode"] == "full" and plan["reason"] == "changed since the last build: dbt project files"


def test_no_record_or_full_setting_or_undeclared_table_builds_in_full(small):
    db, env, inputs = small
    _append(db, "raw_odoo.sale_order")
    assert _plan(db, env, inputs, mode="full")["reason"] == "CXW_DBT_SELECT=full"
    assert _plan(db, env, inputs, force=True)["mode"] == "full"
    with pytest.raises(ValueError, match="CXW_DBT_SELECT"):
        _plan(db, env, inputs, mode="some")
    con = duckdb.connect(str(db))
    con.execute("create table raw_odoo.not_a_source as select 1 as id")
    con.close()
    plan = _plan(db, env, inputs)
    assert plan["mode"] == "full" and "no dbt source declares: odoo.not_a_source" in plan["reason"]
    con = duckdb.connect(str(db))
    dbt_select.clear_record(con)
    con.close()
    plan = _plan(db, env, inputs)
    assert plan["mode"] == "full" and plan["reason"] == "no record of the last successful build"


def _compiled_models(manifest: Path) -> dict[str, str | None]:
    nodes = json.loads(manifest.read_text())["nodes"]
    return {uid: n.get("compiled_code") for uid, n in nodes.items() if n["resource_type"] == "model"}


def test_the_pipeline_build_records_what_it_built_from_and_then_selects(tmp_path, monkeypatch):
    """`cxw.tasks.dbt_build` (the whole project, as the pipeline runs it): the first build is full (no record) and
    records; after a load of one raw table the next is selected, says so in its report and the summary, runs fewer
    nodes, and records again."""
    from cxw import tasks
    from cxw.summary import build_summary, render

    db = tmp_path / "warehouse" / "build.duckdb"
    db.parent.mkdir()
    raw_fixture.build(db, boundary_rows=True)
    con = duckdb.connect(str(db))
    held = raw_fixture.hold_back_second_loads(con)
    con.close()
    for k in ("CXW_FORCE_BUILD", "CXW_KPI_WINDOW_START", "CXW_HISTORY_START", "CXW_DBT_SELECT", "CXW_DBT_TARGET",
              "DBT_TARGET_PATH", "DBT_LOG_PATH", "CXW_DBT_UNIT_TESTS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.setenv("CXW_BUILD_DB", str(db))
    monkeypatch.setenv("CXW_KPI_WINDOW_END", "2025-05-01")
    first = tasks.dbt_build(None, run_id="r1")
    assert first["selection"]["mode"] == "full"
    manifest_path = tmp_path / "dbt" / "target" / "manifest.json"
    compiled_first = _compiled_models(manifest_path)
    assert first["selection"]["reason"] == "no record of the last successful build"
    table = "raw_hubspot.feedback_submissions"
    con = duckdb.connect(str(db))
    assert dbt_select.read_record(con)["raw"][table[len("raw_"):]]
    raw_fixture.restore_held_loads(con, {table: held[table]})
    con.close()
    second = tasks.dbt_build(None, run_id="r2")
    sel = second["selection"]
    assert sel["mode"] == "selected" and sel["changed"] == ["hubspot.feedback_submissions"], sel
    assert 0 < sel["nodes"] < first["selection"]["nodes"]
    # dbt's manifest of a selected build compiles only the nodes that ran; the others keep the last build's SQL,
    # so the docs (which reuse this manifest) show every model's compiled SQL
    compiled_second = _compiled_models(manifest_path)
    ran = {r["unique_id"] for r in json.loads((manifest_path.parent / "run_results.json").read_text())["results"]}
    assert all(compiled_first.values()) and all(compiled_second.values())
    assert {u for u in compiled_second if u not in ran}  # some models did not run
    assert {u: c for u, c in compiled_second.items() if u not in ran} == \
        {u: c for u, c in compiled_first.items() if u not in ran}
    text = render(build_summary("r2", [], None, second, None, None))
    assert "selected: 1 raw tables changed: hubspot.feedback_submissions" in text
    con = duckdb.connect(str(db))
    try:
        plan = dbt_select.plan(con, dbt_select.read_record(con)["input"], tmp_path / "dbt" / "target" / "manifest.json")
    finally:
        con.close()
    assert plan["mode"] == "full" and plan["reason"].startswith("no raw table changed")  # recorded after r2
