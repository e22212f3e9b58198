"""The benchmark's floor: the transforms dbt runs, as ONE DuckDB script generated from dbt's manifest (compiled SQL
in topological order), run in a fresh database holding only the inputs (sources, seeds, snapshots); and the
fingerprints (count + sum of row hashes, cxw.publish.table_fingerprint) that compare its tables with dbt's.

    python -m cxw_tools.bench.floor DB PLAN OUT [MEM]   (run by the harness as a sampled subprocess)
"""

from __future__ import annotations

import json
import re
import sys
import time
from graphlib import TopologicalSorter
from pathlib import Path

from cxw_tools.bench import BenchError

PUBLISHED_SCHEMAS = ("core", "kpi", "cx")


# ---------------------------------------------------------------------------------------------------------------
# The floor: one DuckDB script generated from dbt's manifest
# ---------------------------------------------------------------------------------------------------------------

def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def floor_plan(manifest: dict) -> dict:
    """Turn a dbt manifest (after `dbt build`/`run`/`compile`) into the floor script.

    Returns {"inputs": [(schema, table)], "models": [(unique_id, sql)], "tests": [(unique_id, sql)],
    "hooks": [...], "notes": [...]}. Relations are rewritten from dbt's three-part "db"."schema"."name" to
    "schema"."name" so the script runs in any database file. Ephemeral models are already inlined by dbt as CTEs.
    Sources, seeds and snapshots are inputs (copied, not computed): seeds are CSV reference data, snapshots are
    stateful history. Model pre/post-hooks run around their model (see _render_hook). Anything the floor cannot
    reproduce faithfully raises instead of being skipped silently.
    """
    nodes = manifest["nodes"]
    rel_map: dict[str, str] = {}
    inputs: list[tuple[str, str]] = []
    notes: list[str] = []
    for src in manifest.get("sources", {}).values():
        if src.get("relation_name"):
            rel_map[src["relation_name"]] = f"{_q(src['schema'])}.{_q(src['identifier'])}"
            inputs.append((src["schema"], src["identifier"]))
    models: dict[str, dict] = {}
    for uid, n in nodes.items():
        rt = n["resource_type"]
        if not n.get("config", {}).get("enabled", True):
            continue
        name = n.get("alias") or n["name"]
        if n.get("relation_name"):
            rel_map[n["relation_name"]] = f"{_q(n['schema'])}.{_q(name)}"
        if rt in ("seed", "snapshot"):
            inputs.append((n["schema"], name))
            notes.append(f"{rt} {uid} copied as an input")
        elif rt == "model":
            models[uid] = n
    hooks = []
    for uid, n in sorted(nodes.items()):
        if n["resource_type"] == "operation":
            code = n.get("compiled_code")
            if code is None:
                raise BenchError(f"{uid}: hook without compiled code in the manifest (run dbt build first)")
            hooks.append((uid, code))

    def rewrite(sql: str) -> str:
        # longest first, so no relation name is a prefix of another's replacement
        for rel in sorted(rel_map, key=len, reverse=True):
            sql = sql.replace(rel, rel_map[rel])
        return sql.strip().rstrip(";").strip()

    by_name = {n["name"]: f"{_q(n['schema'])}.{_q(n.get('alias') or n['name'])}" for n in nodes.values()
               if n["resource_type"] in ("model", "seed", "snapshot")}
    by_source = {(src["source_name"], src["name"]): f"{_q(src['schema'])}.{_q(src['identifier'])}"
                 for src in manifest.get("sources", {}).values() if "source_name" in src}

    ts = TopologicalSorter()
    for uid, n in sorted(models.items()):
        ts.add(uid, *sorted(d for d in n.get("depends_on", {}).get("nodes", []) if d in models))
    ordered = list(ts.static_order())
    out_models: list[tuple[str, str]] = []
    schemas: set[str] = set()
    for uid in ordered:
        n = models[uid]
        mat = n["config"].get("materialized")
        if mat == "ephemeral":
            continue
        if n.get("compiled_code") is None:
            raise BenchError(f"{uid}: no compiled code in the manifest (run `dbt build` or `dbt compile` first)")
        name = n.get("alias") or n["name"]
        sql = rewrite(n["compiled_code"])
        target = f"{_q(n['schema'])}.{_q(name)}"
        hooks_of = {h: [r for x in (n["config"].get(h) or [])
                        if (r := _render_hook(uid, x.get("sql") if isinstance(x, dict) else x, target, by_name,
                                              by_source))]
                    for h in ("pre-hook", "post-hook")}
        if mat == "incremental" and target in sql:
            raise BenchError(f"{uid}: compiled as an incremental step (reads {target}); the floor needs the "
                             "manifest of a full build (first run or --full-refresh)")
        if mat == "view":
            stmt = f"create or replace view {target} as\n{sql}"
        elif mat in ("table", "incremental"):
            stmt = f"create or replace table {target} as\n{sql}"
        else:
            raise BenchError(f"{uid}: materialization {mat!r} is not handled by the floor generator")
        schemas.add(n["schema"])
        out_models.append((uid, ";\n".join([*hooks_of["pre-hook"], stmt, *hooks_of["post-hook"]])))
    tests: list[tuple[str, str]] = []
    for uid, n in sorted(nodes.items()):
        if n["resource_type"] == "test" and n.get("config", {}).get("enabled", True) and n.get("compiled_code"):
            tests.append((uid, f"select count(*) from (\n{rewrite(n['compiled_code'])}\n) as dbt_internal_test"))
    unit_tests = len(manifest.get("unit_tests", {}) or {})
    if unit_tests:
        notes.append(f"{unit_tests} dbt unit tests (fixture-only) are in neither the floor nor the pipeline's build "
                     f"(they run in CI; CXW_DBT_UNIT_TESTS=1 adds them to the build)")
    schema_stmts = [f"create schema if not exists {_q(s)}" for s in sorted(schemas)]
    return {"inputs": sorted(set(inputs)), "schemas": schema_stmts, "hooks": hooks, "models": out_models,
            "tests": tests, "notes": notes}


_THIS = re.compile(r"\{\{\s*this\s*\}\}")
_INCREMENTAL_ONLY = re.compile(r"^\s*\{%-?\s*if\s+is_incremental\(\)\s*-?%\}(?:(?!\{%-?\s*(?:else|elif)\b).)*"
                               r"\{%-?\s*endif\s*-?%\}\s*$", re.S)
_REF = re.compile(r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
_SOURCE = re.compile(r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")


def _render_hook(uid: str, sql: str | None, target: str, by_name: dict, by_source: dict) -> str:
    """A model hook as the manifest stores it (unrendered): only {{ this }}, {{ ref('x') }} and
    {{ source('s', 't') }} are resolved; a hook wholly inside `{% if is_incremental() %}…{% endif %}` (no else) is
    dropped, as in the first build the floor reproduces; any other Jinja raises instead of running something else."""
    sql = sql or ""
    if _INCREMENTAL_ONLY.match(sql):
        return ""  # `{% if is_incremental() %}…{% endif %}`: renders to nothing in the full build the floor reproduces

    def ref(m):
        if m.group(1) not in by_name:
            raise BenchError(f"{uid}: hook refers to unknown model {m.group(1)!r}")
        return by_name[m.group(1)]

    def source(m):
        key = (m.group(1), m.group(2))
        if key not in by_source:
            raise BenchError(f"{uid}: hook refers to unknown source {key}")
        return by_source[key]

    out = _SOURCE.sub(source, _REF.sub(ref, _THIS.sub(target, sql))).strip().rstrip(";")
    if "{{" in out or "{%" in out:
        raise BenchError(f"{uid}: hook Jinja the floor generator cannot render: {sql[:200]}")
    return out


def floor_script_text(plan: dict) -> str:
    parts = ["-- generated by cxw_tools.bench.floor from dbt's manifest.json; do not edit\n"
             "-- needs _cxw.pii_salt (one row: the PII salt, never written here), which execute_floor creates"]
    parts += [s + ";" for s in plan["schemas"]]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["hooks"]]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["models"]]
    parts += ["-- ---- data tests (timed separately; each returns its failing-row count)"]
    parts += [f"-- {uid}\n{sql};" for uid, sql in plan["tests"]]
    return "\n\n".join(parts) + "\n"


def _attach_src(con, source_db) -> None:
    """Attach the build database read-only as ``bench_src`` (the floor's linked inputs point there)."""
    con.execute(f"attach '{source_db}' as bench_src (read_only)")


def prepare_floor_db(source_db: Path, floor_db: Path, inputs: list[tuple[str, str]], link: bool = True) -> dict:
    """A fresh database holding only the floor's inputs, taken from the build database.

    ``link`` (default): each input is a view over the build database, attached read-only as ``bench_src`` when the
    floor runs (``execute_floor(attach=...)``); the floor reads the same DuckDB storage without a copy (a copy of
    the raw tables took ≈30 s per repetition at M). ``link=False`` copies every input into the floor file."""
    import duckdb

    for f in (floor_db, Path(str(floor_db) + ".wal")):
        f.unlink(missing_ok=True)
    floor_db.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect(str(floor_db))
    copied, missing = [], []
    try:
        _attach_src(con, source_db)
        have = {(s, t) for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'bench_src'").fetchall()}
        for schema, table in inputs:
            if (schema, table) not in have:
                missing.append(f"{schema}.{table}")
                continue
            con.execute(f"create schema if not exists {_q(schema)}")
            kind = "view" if link else "table"
            con.execute(f"create {kind} {_q(schema)}.{_q(table)} as select * from bench_src.{_q(schema)}.{_q(table)}")
            copied.append(f"{schema}.{table}")
        con.execute("detach bench_src")
        con.execute("checkpoint")
    finally:
        con.close()
    return {"copied": copied, "missing": missing, "seconds": round(time.perf_counter() - t0, 3),
            "attach": str(source_db) if link else None}


def execute_floor(db: Path, plan: dict, memory_limit: str | None = None, attach: str | None = None) -> dict:
    """Run the floor script with the duckdb Python API; models and data tests timed separately. ``attach``: the
    build database the input views of ``prepare_floor_db(link=True)`` read (attached read-only, not timed)."""
    import duckdb

    con = duckdb.connect(str(db))
    try:
        if memory_limit:
            con.execute(f"set memory_limit = '{memory_limit}'")
        if attach:
            _attach_src(con, attach)
        # the salt table hash_pii reads (the dbt-duckdb plugin writes it for dbt; cxw/dbt_pii_plugin.py), so the
        # floor's hashes equal the build's; not timed, like the attach
        from cxw.pii import pii_salt

        con.execute("create schema if not exists _cxw")
        con.execute("create or replace table _cxw.pii_salt as select ?::varchar as salt", [pii_salt()])
        t0 = time.perf_counter()
        for stmt in plan["schemas"]:
            con.execute(stmt)
        for _, sql in plan["hooks"]:
            con.execute(sql)
        per_model = {}
        for uid, sql in plan["models"]:
            t1 = time.perf_counter()
            con.execute(sql)
            per_model[uid] = round(time.perf_counter() - t1, 4)
        con.execute("checkpoint")
        models_s = time.perf_counter() - t0
        t2 = time.perf_counter()
        failing = {}
        for uid, sql in plan["tests"]:
            n = con.execute(sql).fetchone()[0]
            if n:
                failing[uid] = n
        tests_s = time.perf_counter() - t2
    finally:
        con.close()
    slowest = sorted(per_model.items(), key=lambda kv: -kv[1])[:5]
    return {"models_s": round(models_s, 3), "tests_s": round(tests_s, 3), "models": len(plan["models"]),
            "tests": len(plan["tests"]), "tests_with_failures": failing, "slowest_models": slowest}


def fingerprints(db: Path, schemas=PUBLISHED_SCHEMAS, tables: list[str] | None = None,
                 attach: str | None = None, as_published: bool = False) -> dict[str, list]:
    """{schema.table: [count, sum of row hashes]} for every base table of `schemas` (or the given tables; views
    over a floor's linked inputs need ``attach``, see ``prepare_floor_db``). ``as_published``: of the tables as
    publish writes them (cxw.publish.published_fingerprint: HUGEINT / unsigned columns cast for BI drivers) - a
    build database compared with a published file must be read so, else every table with a sum() column differs."""
    import duckdb

    from cxw.publish import published_fingerprint, table_fingerprint

    con = duckdb.connect(str(db), read_only=True)
    try:
        if attach:
            _attach_src(con, attach)
        cat = con.execute("select current_database()").fetchone()[0]
        if tables is None:
            rows = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = ? "
                "and schema_name in (select unnest(?::varchar[])) order by 1, 2", [cat, list(schemas)]).fetchall()
            tables = [f"{s}.{t}" for s, t in rows]
        out = {}
        for qualified in tables:
            s, t = qualified.split(".", 1)
            fp = published_fingerprint if as_published else table_fingerprint
            out[qualified] = list(fp(con, f"{_q(s)}.{_q(t)}"))
        return out
    finally:
        con.close()


def _floor_exec_main(argv: list[str]) -> int:
    """Subprocess entry (so the floor is sampled like the DAG): python -m cxw_tools.bench.floor DB PLAN OUT [MEM]"""
    db, plan_file, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    mem = argv[3] if len(argv) > 3 and argv[3] else None
    plan = json.loads(plan_file.read_text())
    res = execute_floor(db, plan, mem, attach=plan.get("attach"))
    out.write_text(json.dumps(res, indent=1))
    return 0




if __name__ == "__main__":
    sys.exit(_floor_exec_main(sys.argv[1:]))
