"""The benchmark's floor (cxw_tools.bench.floor) must run the SQL dbt runs: generated from the real dbt manifest of a build over
the raw fixture of tests/dbt, executed in a fresh database holding only the inputs, it must produce the same table
fingerprints (count + sum of row hashes) as dbt's build for every model — else the harness would benchmark other SQL.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dbt_cli

from cxw_tools.bench import BenchError
from cxw_tools.bench.floor import execute_floor, fingerprints, floor_plan, floor_script_text, prepare_floor_db

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
sys.path.insert(0, str(REPO / "tests" / "dbt"))
import raw_fixture  # noqa: E402


def _node(name, mat, deps=(), code="select 1 as x", schema="s", rt="model"):
    return {"unique_id": f"{rt}.p.{name}", "resource_type": rt, "name": name, "alias": name, "schema": schema,
            "relation_name": f'"db"."{schema}"."{name}"', "config": {"materialized": mat, "enabled": True},
            "depends_on": {"nodes": list(deps)}, "compiled_code": code}


def test_floor_plan_orders_rewrites_and_refuses_what_it_cannot_reproduce():
    nodes = {
        "model.p.c": _node("c", "table", ["model.p.b"], 'select * from "db"."s"."b"'),
        "model.p.b": _node("b", "view", ["model.p.a", "model.p.e"],
                           'with __dbt__cte__e as (select 1) select * from "db"."s"."a"'),
        "model.p.a": _node("a", "table", [], 'select * from "db"."raw_x"."t";'),
        "model.p.e": _node("e", "ephemeral"),
        "seed.p.k": _node("k", "seed", rt="seed"),
        "test.p.t1": {**_node("t1", "test", ["model.p.c"], 'select * from "db"."s"."c" where x is null', rt="test")},
    }
    sources = {"source.p.x.t": {"relation_name": '"db"."raw_x"."t"', "schema": "raw_x", "identifier": "t"}}
    plan = floor_plan({"nodes": nodes, "sources": sources, "unit_tests": {}})
    assert [u for u, _ in plan["models"]] == ["model.p.a", "model.p.b", "model.p.c"]
    assert plan["models"][0][1] == 'create or replace table "s"."a" as\nselect * from "raw_x"."t"'
    assert plan["models"][1][1].startswith('create or replace view "s"."b" as')
    assert plan["inputs"] == [("raw_x", "t"), ("s", "k")]
    assert '"db".' not in floor_script_text(plan)
    assert plan["tests"] == [("test.p.t1", 'select count(*) from (\nselect * from "s"."c" where x is null\n) '
                                           "as dbt_internal_test")]
    hooked = dict(nodes)
    hooked["model.p.c"] = {**nodes["model.p.c"], "config": {
        "materialized": "table", "enabled": True,
        "post-hook": [{"sql": "delete from {{ this }} where x not in (select x from {{ ref('a') }})"}]}}
    stmt = dict(floor_plan({"nodes": hooked, "sources": sources})["models"])["model.p.c"]
    assert stmt.endswith(';\ndelete from "s"."c" where x not in (select x from "s"."a")')
    hooked["model.p.c"]["config"]["post-hook"] = [{"sql": "{% if is_incremental() %}{{ prune() }}{% endif %}"}]
    assert dict(floor_plan({"nodes": hooked, "sources": sources})["models"])["model.p.c"] == \
        'create or replace table "s"."c" as\nselect * from "s"."b"'  # incremental-only: nothing in a full build
    hooked["model.p.c"]["config"]["post-hook"] = [{"sql": "{% if is_incremental() %}a{% else %}b{% endif %}"}]
    with pytest.raises(BenchError, match="Jinja"):
        floor_plan({"nodes": hooked, "sources": sources})
    hooked["model.p.c"]["config"]["post-hook"] = [{"sql": "{{ log('x') }}"}]
    with pytest.raises(BenchError, match="Jinja"):
        floor_plan({"nodes": hooked, "sources": sources})
    inc = dict(nodes)
    inc["model.p.c"] = _node("c", "incremental", ["model.p.b"], 'select * from "db"."s"."b" where x > '
                                                                '(select max(x) from "db"."s"."c")')
    with pytest.raises(BenchError, match="incremental"):
        floor_plan({"nodes": inc, "sources": sources})
    nocode = dict(nodes)
    nocode["model.p.a"] = {**nodes["model.p.a"], "compiled_code": None}
    with pytest.raises(BenchError, match="compiled"):
        floor_plan({"nodes": nocode, "sources": sources})


@pytest.fixture(scope="module")
def built_fixture(tmp_path_factory):
    """A CXW_HOME whose build database (warehouse/build.duckdb, where the harness reads it) holds the raw fixture of
    tests/dbt built by dbt: models, seeds and snapshots, with the empty KPI window the harness passes for none."""
    from cxw.dbt import kpi_window_vars

    home = tmp_path_factory.mktemp("bench_fixture")
    db = home / "warehouse" / "build.duckdb"
    db.parent.mkdir()
    raw_fixture.build(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(home), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(home / "target"),
                "DBT_LOG_PATH": str(home / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DO_NOT_TRACK": "1"})
    # models, seeds and snapshots only: the floor reproduces models; dbt's data/unit tests are not compared here
    proc = dbt_cli.run(env, "build", "--resource-type", "model", "--resource-type", "seed", "--resource-type",
                       "snapshot", *kpi_window_vars(None), timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return home, db


def test_floor_script_reproduces_dbt_build_on_the_fixture(built_fixture, tmp_path):
    home, db = built_fixture
    manifest = json.loads((home / "target" / "manifest.json").read_text())
    plan = floor_plan(manifest)
    assert len(plan["models"]) >= 10
    floor_db = tmp_path / "floor" / "floor.duckdb"   # another file name: a catalog other than dbt's
    prep = prepare_floor_db(db, floor_db, plan["inputs"])
    assert not [m for m in prep["missing"] if not m.startswith("raw_")], prep   # seeds/snapshots exist after build
    res = execute_floor(floor_db, plan, attach=prep["attach"])   # inputs are views over the build file
    errors = {u: n for u, n in res["tests_with_failures"].items()
              if manifest["nodes"][u]["config"].get("severity", "error").lower() == "error"}
    assert not errors, errors

    relations = []
    for uid, _ in plan["models"]:
        n = manifest["nodes"][uid]
        relations.append(f"{n['schema']}.{n.get('alias') or n['name']}")
    want = fingerprints(db, tables=relations)
    got = fingerprints(floor_db, tables=relations, attach=prep["attach"])
    differ = [r for r in relations if want[r] != got[r]]
    assert not differ, {r: (want[r], got[r]) for r in differ}


def test_full_refresh_check_compares_the_build_as_published(built_fixture, monkeypatch):
    """The bench's check "incremental marts = full refresh" compares the incremental run's PUBLISHED file with a
    `dbt build --full-refresh` of a copy of the build database (harness.dbt_full_refresh). Publish casts the column
    types BI drivers cannot map (cxw.publish.BI_TYPE_CASTS: a sum() of integers is a HUGEINT in DuckDB, published as
    BIGINT), which changes the fingerprint's schema digest: the copy must be fingerprinted as published, else every
    mart with such a column differs from itself (six tables at XS on 2026-12-07). Same raw tables, so equal."""
    import duckdb

    from cxw.publish import BI_TYPE_CASTS, publish
    from cxw_tools.bench.harness import dbt_full_refresh

    home, db = built_fixture
    monkeypatch.setenv("CXW_HOME", str(home))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    assert publish("run-1", None, None)["status"] == "published"
    con = duckdb.connect(str(db), read_only=True)
    try:  # the check is meaningful: some published mart of the fixture has a column publish casts
        cast = con.execute("select distinct schema_name || '.' || table_name from duckdb_columns() "
                           "where schema_name in ('core', 'kpi', 'cx') and data_type in (select unnest(?::varchar[]))",
                           [list(BI_TYPE_CASTS)]).fetchall()
    finally:
        con.close()
    assert cast
    published = fingerprints(home / "published" / "cx_warehouse.duckdb")
    full_refresh = dbt_full_refresh(home, None, {})["fingerprints"]
    assert set(full_refresh) == set(published)
    differ = sorted(k for k in published if published[k] != full_refresh[k])
    assert not differ, differ


# ---------------------------------------------------------------------------------------------------------------
# Running the DAG under LocalExecutor: attribution of processes to tasks, parallel wall, hung shutdown
# ---------------------------------------------------------------------------------------------------------------

def test_task_owner_reads_both_airflow_process_titles():
    from cxw_tools.bench.sampler import _task_owner

    ti = "01a209c5-0269-75c0-b6e7-c00a12d511e4"
    assert _task_owner(f"airflow worker -- LocalExecutor: {ti}") == ti.replace("-", "")   # the supervisor
    assert _task_owner(f"airflow worker -- {ti}") == ti.replace("-", "")                  # the task runner
    assert _task_owner("airflow worker -- LocalExecutor: <idle>") is None
    assert _task_owner("/venv/bin/python /venv/bin/dbt build --project-dir x") is None    # inherits from its parent


def test_busy_time_counts_parallel_tasks_once():
    from cxw_tools.bench.dagrun import _union_s

    assert _union_s([]) == 0
    assert _union_s([(0, 10), (2, 5), (4, 12), (20, 21)]) == 13      # [0, 12] and [20, 21]
    assert _union_s([(5, 6), (0, 1)]) == 2                           # order does not matter
    assert _union_s([(0, 3), (3, 4)]) == 4                           # touching intervals


def test_sampler_gives_a_task_the_cpu_of_its_own_processes_only(tmp_path):
    """Two 'tasks' (processes titled as Airflow titles task runners) burn CPU at the same time, one of them in a child
    process; the sampler must give each its own CPU — not half of the sum, as splitting by time would."""
    from cxw_tools.bench.sampler import Sampler

    burn = ("import setproctitle, sys, time, subprocess\n"
            "setproctitle.setproctitle('airflow worker -- ' + sys.argv[1])\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time\\nt=time.time()\\nwhile time.time()-t<1.5: pass'])"
            " if sys.argv[2] == 'child' else None\n"
            "t = time.time()\n"
            "while time.time() - t < float(sys.argv[3]): pass\n"
            "child and child.wait()\n")
    a, b = "0" * 8 + "-0000-0000-0000-" + "a" * 12, "0" * 8 + "-0000-0000-0000-" + "b" * 12
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys\n"
                               f"ps = [subprocess.Popen([sys.executable, '-c', {burn!r}, {a!r}, 'child', '1.5']),\n"
                               f"      subprocess.Popen([sys.executable, '-c', {burn!r}, {b!r}, 'none', '0.3'])]\n"
                               "[p.wait() for p in ps]\n"])
    sampler = Sampler(parent.pid, [], interval=0.05)
    sampler.start()
    parent.wait()
    sampler.stop()
    out = sampler.attribute({"task_a": (0, 2e9), "task_b": (0, 2e9)},
                            {"task_a": a.replace("-", ""), "task_b": b.replace("-", "")})
    # a: its own loop and its child's, ~1.5 s each (on two cores); b: ~0.3 s
    assert out["task_a"]["cpu_s"] > 2 * out["task_b"]["cpu_s"] > 0, out
    assert out["task_b"]["cpu_s"] < 1.0, out


def test_a_process_that_hangs_after_its_work_is_done_is_terminated(tmp_path):
    from cxw_tools.bench.sampler import run_sampled

    res = run_sampled([sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ), tmp_path / "x.log", [],
                      finished=lambda: True, grace_s=1.0)
    res.pop("sampler")
    assert res["terminated_after_finish"] and res["wall_s"] < 60, res
    assert "did not exit by itself" in (tmp_path / "x.log").read_text()
    res = run_sampled([sys.executable, "-c", "pass"], dict(os.environ), tmp_path / "y.log", [],
                      finished=lambda: False, grace_s=1.0)
    assert res["returncode"] == 0 and not res["terminated_after_finish"]


def test_a_run_counts_as_finished_only_when_it_is_new(tmp_path):
    # the bench's repetitions share one metadata DB: `dags test` of a logical date that already has a run deletes
    # that row first, and for a moment an older finished run is the newest row; that must not end the new run early
    import sqlite3

    from cxw_tools.bench.dagrun import DAG_ID, _read_run, _run_finished

    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    con.execute("create table dag_run (id integer primary key, dag_id text, run_id text, logical_date text, "
                "data_interval_start text, data_interval_end text, start_date text, end_date text, state text)")
    con.execute("create table task_instance (dag_id text, run_id text, task_id text, start_date text, "
                "end_date text, duration real, state text, try_number int)")
    con.executemany("insert into dag_run (dag_id, run_id, logical_date, state) values (?, ?, ?, ?)",
                    [(DAG_ID, "full-rep1", "A", "success"), (DAG_ID, "incr-rep1", "B", "success")])
    con.commit()
    finished = _run_finished(db)
    con.execute("delete from dag_run where run_id = 'incr-rep1'")  # dags test replaces the run of logical date B
    con.commit()
    assert not finished()
    con.execute("insert into dag_run (dag_id, run_id, logical_date, state) values (?, 'noop-rep1', 'B', 'running')",
                [DAG_ID])
    con.commit()
    assert not finished()
    con.execute("update dag_run set state = 'success' where run_id = 'noop-rep1'")
    con.commit()
    assert finished()
    assert _read_run(db, finished.before)[0]["run_id"] == "noop-rep1"
    con.close()
