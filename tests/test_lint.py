"""The linters, as tests so CI runs them (`./cx lint` runs the same three for a developer, with their output):
ruff over the Python (rules in pyproject.toml), sqlfluff over the dbt models (dbt_project/.sqlfluff) and the DAG
rules over dbt's manifest (dbt_project/dag_rules.py, our stand-in for dbt-project-evaluator).
docs/DECISIONLOG.md "Linters" says which rules run and which are left out, and why."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = ROOT / "dbt_project"
BIN = Path(sys.executable).parent

_spec = importlib.util.spec_from_file_location("dag_rules", DBT_DIR / "dag_rules.py")
dag_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dag_rules)


def _run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True)


def test_ruff_finds_no_problems():
    proc = _run([str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", "."], ROOT)
    assert proc.returncode == 0, f"ruff check (fix: ./cx lint --fix, then by hand):\n{proc.stdout}{proc.stderr}"


def test_sqlfluff_finds_no_problems_in_the_models():
    # two processes: parsing is most of the ~45 CPU-seconds
    proc = _run([str(BIN / "sqlfluff"), "lint", "--processes", "2", "models", "data-tests"], DBT_DIR)
    assert proc.returncode == 0, f"sqlfluff lint (fix: ./cx lint --fix, then by hand):\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    return dag_rules.Dag(dag_rules.parse_manifest(tmp_path_factory.mktemp("dbt-parse")))


# Two rules that issue 16 point 2 (intermediate/ in flow-ordered folders, one alert-rule model) makes true: expected
# to fail (strictly) only while the flat models/intermediate/ layout it replaces is still here.
_FLAT_INTERMEDIATE = (DBT_DIR / "models" / "intermediate" / "int_kpi_day_counts.sql").exists()
_UNTIL_POINT_2 = {
    "presentation-marts-are-leaves": "int_kpi_day_counts reads cx_detractor_alerts until issue 16 point 2",
    "folder-flow-is-acyclic": "intermediate/ sits on both sides of marts/core until issue 16 point 2",
}


@pytest.mark.parametrize("rule", [
    pytest.param(r, marks=pytest.mark.xfail(_FLAT_INTERMEDIATE, strict=True, reason=_UNTIL_POINT_2[r]))
    if r in _UNTIL_POINT_2 else r for r in dag_rules.RULES])
def test_dag_rule_holds(dag, rule):
    problems = dag_rules.RULES[rule](dag)
    assert problems == [], f"dbt DAG rule {rule} (dbt_project/dag_rules.py):\n" + "\n".join(problems)


def _manifest(models: dict[str, tuple[str, list[str]]], tests=()) -> dict:
    """A minimal manifest: model name -> (path under models/, parents as names or source.<src>.<table>)."""
    def uid(name):
        return f"source.cx_warehouse.{name[7:]}" if name.startswith("source.") else f"model.cx_warehouse.{name}"
    nodes = {uid(n): {"resource_type": "model", "original_file_path": f"models/{path}", "description": "d",
                      "depends_on": {"nodes": [uid(p) for p in parents]}} for n, (path, parents) in models.items()}
    for i, (model, kind, col) in enumerate(tests):
        nodes[f"test.cx_warehouse.t{i}"] = {"resource_type": "test", "attached_node": uid(model),
                                            "test_metadata": {"name": kind}, "column_name": col}
    return {"nodes": nodes}


def test_dag_rules_report_the_violations_they_describe():
    dag = dag_rules.Dag(_manifest({
        "stg_odoo__orders": ("staging/odoo/stg_odoo__orders.sql", ["source.odoo.orders", "stg_ga4__events"]),
        "stg_ga4__events": ("staging/ga4/stg_ga4__events.sql", ["source.ga4.events"]),
        "fct_orders": ("marts/core/fct_orders.sql", ["source.odoo.orders", "int_order_kpis"]),
        "int_order_kpis": ("intermediate/kpi/int_order_kpis.sql", ["fct_orders", "cx_alerts"]),
        "cx_alerts": ("marts/core/cx_alerts.sql", ["fct_orders"]),
        "int_orders_unioned": ("marts/core/intermediate/int_orders_unioned.sql", ["stg_odoo__orders"]),
        "int_order_lines": ("marts/core/int_order_lines.sql", ["stg_odoo__orders"]),
    }, tests=[("stg_odoo__orders", "unique", "order_id"), ("stg_odoo__orders", "not_null", "order_id"),
              ("stg_ga4__events", "unique", "event_id")]))
    assert dag_rules.sources_only_in_staging(dag) == [
        "fct_orders (marts/core) reads source odoo.orders: only staging models read sources"]
    assert dag_rules.staging_reads_staging(dag) == [
        "stg_odoo__orders (staging/odoo) reads stg_ga4__events (staging/ga4)"]
    assert dag_rules.presentation_marts_are_leaves(dag) == [
        "int_order_kpis (intermediate/kpi) reads the presentation mart cx_alerts"]
    [cycle] = dag_rules.folder_flow_is_acyclic(dag)
    assert cycle.startswith("folders intermediate/kpi, marts/core read each other")
    assert dag_rules.prefix_matches_folder(dag) == [
        "cx_alerts is in models/marts/core/, a cx_ model belongs under models/marts/cx/",
        "int_order_lines is in models/marts/core/, an int_ model belongs in an intermediate/ folder"]
    assert dag_rules.primary_key_tested(dag) == [
        "stg_ga4__events has no primary-key test (unique + not_null on one column, or a unique key expression)",
        "fct_orders has no primary-key test (unique + not_null on one column, or a unique key expression)"]
    dag.models["model.cx_warehouse.fct_orders"]["description"] = " "
    assert dag_rules.described(dag) == ["fct_orders (marts/core) has no description"]


def test_only_the_listed_reader_may_read_a_presentation_mart():
    """kpi_vs_target compares the published kpi_period with targets (issue 19.3): that one read is allowed; the same
    model reading another presentation mart, or another model reading kpi_period, is still a violation."""
    dag = dag_rules.Dag(_manifest({
        "kpi_period": ("marts/kpi/kpi_period.sql", []),
        "kpi_daily": ("marts/kpi/kpi_daily.sql", []),
        "kpi_vs_target": ("marts/kpi/kpi_vs_target.sql", ["kpi_period", "kpi_daily"]),
        "cx_other": ("marts/cx/cx_other.sql", ["kpi_period"]),
    }))
    assert dag_rules.presentation_marts_are_leaves(dag) == [
        "kpi_vs_target (marts/kpi) reads the presentation mart kpi_daily",
        "cx_other (marts/cx) reads the presentation mart kpi_period"]
