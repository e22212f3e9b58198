"""Rules for the DAG of dbt models, checked over dbt's manifest: our stand-in for dbt-project-evaluator.

dbt-project-evaluator is a dbt package (installed by `dbt deps` from the dbt hub, run as models over the graph); it
cannot be installed offline, and most of its rules are generic. These are the rules this project keeps
(docs/DECISIONLOG.md "Linters", the layers in README "dbt layers"):

  sources-only-in-staging      only models under models/staging/ read a source(), and a model of
                               staging/<source>/ reads only that source (quarantine and load_ledger, at the
                               staging root, are the cross-source ledgers)
  staging-reads-staging        staging models read only sources, seeds, snapshots and staging models of their own
                               source (the root ledgers: any staging model)
  presentation-marts-are-leaves  no model reads a kpi_ or cx_ mart: KPIs never depend on a presentation mart
                               (one listed exception, PRESENTATION_READS_ALLOWED: kpi_vs_target compares the
                               published kpi_period with targets, and is itself a leaf)
  folder-flow-is-acyclic       the graph of model folders (staging/odoo, intermediate/<topic>, marts/core, ...) has
                               no cycle, so folder order is flow order (an intermediate topic folder sits on one
                               side of marts/core)
  prefix-matches-folder        base_/stg_ models live under staging/, int_ in an intermediate/ folder
                               (models/intermediate/<topic>/ before the marts, marts/**/intermediate/ among
                               them), dim_/fct_ under marts/core/, kpi_ under marts/kpi/, cx_ under marts/cx/
  primary-key-tested           every stg_, dim_ and fct_ model has a primary-key test: unique + not_null on one
                               column, a model-level unique expression, or a unique combination of columns
  described                    every model but the base_ views has a description (base_ views are internal to their
                               staging folder: read only by its stg_ model and the ledgers)

Usage: python dbt_project/dag_rules.py [path/to/manifest.json]  (default: parse the project into a temporary
target directory with `dbt parse`). Stdlib only, so the lint test and `./cx lint` share it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent

# model-name prefix -> the folder (under models/) it must live in; int_ models: any folder named intermediate
PREFIX_FOLDERS = {"base_": "staging/", "stg_": "staging/", "dim_": "marts/core/", "fct_": "marts/core/",
                  "kpi_": "marts/kpi/", "cx_": "marts/cx/"}
PRESENTATION_PREFIXES = ("kpi_", "cx_")
PK_TESTED_PREFIXES = ("stg_", "dim_", "fct_")
# (reader, presentation mart) pairs allowed by presentation-marts-are-leaves; the reader must be a leaf itself
PRESENTATION_READS_ALLOWED = {("kpi_vs_target", "kpi_period")}


def parse_manifest(target_dir: Path, dbt: str | None = None) -> dict:
    """`dbt parse` of the project into target_dir (no database is opened); the manifest as a dict."""
    dbt = dbt or str(Path(sys.executable).with_name("dbt"))
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", CXW_DBT_TARGET="duckdb")
    env.setdefault("CXW_BUILD_DB", str(target_dir / "parse-only.duckdb"))  # the profile needs a path; never opened
    proc = subprocess.run([dbt, "parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                           "--target-path", str(target_dir), "--log-path", str(target_dir / "logs"),
                           "--no-partial-parse", "--quiet"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads((target_dir / "manifest.json").read_text())


class Dag:
    """The models of a manifest with their parents, folders and tests."""

    def __init__(self, manifest: dict):
        nodes = manifest["nodes"]
        self.models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
        self.parents = {uid: sorted(set(n["depends_on"]["nodes"])) for uid, n in self.models.items()}
        self.tests = defaultdict(list)
        for n in nodes.values():
            if n["resource_type"] == "test" and n.get("attached_node"):
                self.tests[n["attached_node"]].append(n)

    def name(self, uid: str) -> str:
        return uid.split(".")[-1] if not uid.startswith("source.") else "source " + ".".join(uid.split(".")[-2:])

    def folder(self, uid: str) -> str:
        """The model's folder under models/. A folder's own base/ or intermediate/ subfolder counts as the folder
        (staging/odoo/base -> staging/odoo, marts/core/intermediate -> marts/core): its models are internal to it."""
        path = self.models[uid]["original_file_path"]
        parts = Path(path).parts[1:-1]  # drop models/ and the file
        if len(parts) > 1 and parts[-1] in ("base", "intermediate"):
            parts = parts[:-1]
        return "/".join(parts)

    def path_parts(self, uid: str) -> tuple[str, ...]:
        return Path(self.models[uid]["original_file_path"]).parts[1:-1]


def sources_only_in_staging(dag: Dag) -> list[str]:
    out = []
    for uid, parents in dag.parents.items():
        folder = dag.folder(uid)
        for p in parents:
            if not p.startswith("source."):
                continue
            source_name = p.split(".")[2]
            if not folder.startswith("staging"):
                out.append(f"{dag.name(uid)} ({folder}) reads {dag.name(p)}: only staging models read sources")
            elif folder != "staging" and folder != f"staging/{source_name}":
                out.append(f"{dag.name(uid)} ({folder}) reads {dag.name(p)} of another source")
    return out


def staging_reads_staging(dag: Dag) -> list[str]:
    out = []
    for uid, parents in dag.parents.items():
        folder = dag.folder(uid)
        if not folder.startswith("staging"):
            continue
        for p in parents:
            if p.split(".")[0] in ("source", "seed", "snapshot"):
                continue
            pf = dag.folder(p) if p in dag.models else "?"
            if not pf.startswith("staging") or (folder != "staging" and pf != folder):
                out.append(f"{dag.name(uid)} ({folder}) reads {dag.name(p)} ({pf})")
    return out


def presentation_marts_are_leaves(dag: Dag) -> list[str]:
    return [f"{dag.name(uid)} ({dag.folder(uid)}) reads the presentation mart {dag.name(p)}"
            for uid, parents in dag.parents.items() for p in parents
            if p in dag.models and dag.name(p).startswith(PRESENTATION_PREFIXES)
            and (dag.name(uid), dag.name(p)) not in PRESENTATION_READS_ALLOWED]


def folder_flow_is_acyclic(dag: Dag) -> list[str]:
    """Every cycle of the folder graph, once, as the model edges that close it."""
    edges = defaultdict(lambda: defaultdict(list))  # folder -> parent folder -> [(model, parent)]
    for uid, parents in dag.parents.items():
        for p in parents:
            if p in dag.models and dag.folder(p) != dag.folder(uid):
                edges[dag.folder(uid)][dag.folder(p)].append((dag.name(uid), dag.name(p)))
    # strongly connected components (Tarjan)
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted({f for f in edges} | {p for e in edges.values() for p in e}):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        links = [f"{a} -> {b} ({models[0][0]} reads {models[0][1]}" + (f" and {len(models) - 1} more)" if
                                                                        len(models) > 1 else ")")
                 for a in comp for b, models in sorted(edges[a].items()) if b in comp]
        out.append(f"folders {', '.join(comp)} read each other: " + "; ".join(links))
    return out


def prefix_matches_folder(dag: Dag) -> list[str]:
    out = []
    for uid in dag.models:
        name, parts = dag.name(uid), dag.path_parts(uid)
        folder = "/".join(parts) + "/"
        if name.startswith("int_") and "intermediate" not in parts:
            out.append(f"{name} is in models/{folder}, an int_ model belongs in an intermediate/ folder")
        for prefix, want in PREFIX_FOLDERS.items():
            if name.startswith(prefix) and not folder.startswith(want):
                out.append(f"{name} is in models/{folder}, a {prefix} model belongs under models/{want}")
    return out


def primary_key_tested(dag: Dag) -> list[str]:
    out = []
    for uid in dag.models:
        if not dag.name(uid).startswith(PK_TESTED_PREFIXES):
            continue
        unique, not_null, combo = set(), set(), False
        for t in dag.tests[uid]:
            kind = (t.get("test_metadata") or {}).get("name", "")
            col = t.get("column_name")
            if kind == "unique":
                unique.add(col)
            elif kind == "not_null":
                not_null.add(col)
            elif kind.endswith("unique_combination_of_columns"):
                combo = True
        # a model-level unique (column_name is an expression over several columns) is a compound key
        if not (unique & not_null or combo or any(c and not c.isidentifier() for c in unique)):
            out.append(f"{dag.name(uid)} has no primary-key test (unique + not_null on one column, or a unique "
                       "key expression)")
    return out


def described(dag: Dag) -> list[str]:
    return [f"{dag.name(uid)} ({dag.folder(uid)}) has no description" for uid, n in dag.models.items()
            if not dag.name(uid).startswith("base_") and not (n.get("description") or "").strip()]


RULES = {
    "sources-only-in-staging": sources_only_in_staging,
    "staging-reads-staging": staging_reads_staging,
    "presentation-marts-are-leaves": presentation_marts_are_leaves,
    "folder-flow-is-acyclic": folder_flow_is_acyclic,
    "prefix-matches-folder": prefix_matches_folder,
    "primary-key-tested": primary_key_tested,
    "described": described,
}


def main(argv: list[str]) -> int:
    if argv:
        manifest = json.loads(Path(argv[0]).read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="cxw-dag-rules-") as tmp:
            manifest = parse_manifest(Path(tmp))
    dag = Dag(manifest)
    failed = 0
    for rule, check in RULES.items():
        problems = check(dag)
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {rule}")
        for p in problems:
            print(f"     {p}")
    print(f"dag rules: {len(dag.models)} models, {failed} of {len(RULES)} rules failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
