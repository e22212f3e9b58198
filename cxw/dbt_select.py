"""Which part of the dbt project a pipeline build runs: only what the raw tables that changed feed (issue 20.2).

After a successful `dbt build` the pipeline records in the build database (`_cxw.dbt_built_from`, beside the
loader's bookkeeping in `_cxw`) what the models were built from: a content key per raw table, and the things that do
not come from raw data but change what a model computes - the build's arguments (the KPI window `--vars`), the dbt
project's files, the dbt / adapter / DuckDB versions and the settings the models read (PII salt, target). The record
is removed before a build starts, so a failed or partial build leaves none.

The next build compares: when only raw tables changed, it runs `dbt build --select source:<source>.<table>+ ...`
(each changed table's source and everything downstream of it: staging, snapshots reading that staging, the
`quarantine` union, marts); a model not downstream of a changed table has the same inputs, code and vars as when it
was built, so building it again would give the same table. Anything else builds the whole project, with the reason:
no record, arguments / project / versions / settings changed, nothing changed (a forced rebuild), a changed raw table
no dbt source declares, no manifest to map tables to sources, a target other than DuckDB, `CXW_FORCE_BUILD=1`,
`CXW_DBT_SELECT=full`.

A raw table's key: the loader's fingerprint of the loads it holds (`_cxw.raw_tables.fingerprint`: every load, also
one that only repeated rows - a load id can reach a mart) and its column list; a raw table without the loader's
bookkeeping (written by something else, e.g. the tests' raw fixture) is keyed by its content (count and sum of row
hashes). Loads are immutable; the one other writer of raw tables, an erasure, removes the record (`cxw.erase_stores`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from .buildstate import clear_kv_record, hash_code_files, read_kv_record, write_kv_record

log = logging.getLogger(__name__)

RECORD = "_cxw.dbt_built_from"
MODES = ("auto", "full")


def project_key(project_dir: Path, extra_files: tuple[Path, ...] = ()) -> str:
    """Hash of the dbt project's files (models, macros, seeds, snapshots, tests, dbt_project.yml, profiles.yml,
    packages), without dbt's target/ and logs/ and dot files (tool state), plus ``extra_files`` (code dbt runs)."""
    h = hashlib.sha256()
    hash_code_files(h, project_dir, project_dir)
    for f in extra_files:
        h.update(f"{f.name}\n".encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def versions_key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("dbt-core", "dbt-duckdb", "duckdb"):
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg}==?")
    return ",".join(out)


def build_inputs(args: list[str], env: dict, project_dir: Path | None = None) -> dict[str, str]:
    """What a build depends on besides raw data: its dbt arguments (the `--vars`), the project, the versions and the
    settings the models read (``env``: the build fingerprint's `env` part, secrets hashed)."""
    from .config import DBT_PROJECT_DIR, REPO_ROOT

    return {"args": json.dumps(args), "env": json.dumps(env, sort_keys=True),
            "project": project_key(project_dir or DBT_PROJECT_DIR, (REPO_ROOT / "cxw" / "dbt_pii_plugin.py",)),
            "versions": versions_key()}


def raw_table_keys(con) -> dict[str, str]:
    """{"<source>.<entity>": key} for every raw table of the DuckDB build database (see the module's doc)."""
    cols = con.execute(
        "select table_schema, table_name, string_agg(column_name || ' ' || data_type, ',' order by column_name) "
        "from information_schema.columns where table_schema like 'raw\\_%' escape '\\' "
        "group by 1, 2 order by 1, 2").fetchall()
    booked: dict[tuple[str, str], str] = {}
    if con.execute("select count(*) from information_schema.tables where table_schema = '_cxw' "
                   "and table_name = 'raw_tables'").fetchone()[0]:
        booked = {(s, e): fp for s, e, fp in con.execute(
            "select source, entity, fingerprint from _cxw.raw_tables").fetchall()}
    keys = {}
    for schema, table, columns in cols:
        source = schema[len("raw_"):]
        fp = booked.get((source, table))
        if fp is None:  # no loader bookkeeping: the content itself
            n, s = con.execute(f'select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar '
                               f'from "{schema}"."{table}" as t').fetchone()
            fp = f"content:{n}:{s}"
        keys[f"{source}.{table}"] = hashlib.sha256(f"{fp}\n{columns}".encode()).hexdigest()[:32]
    return keys


def clear_record(con) -> None:
    clear_kv_record(con, RECORD)


def write_record(con, inputs: dict[str, str], raw_keys: dict[str, str]) -> None:
    """After a successful build: what it was built from (``raw_keys``: taken before dbt started)."""
    write_kv_record(con, RECORD,
                    [["input", k, v] for k, v in inputs.items()] + [["raw", k, v] for k, v in raw_keys.items()])


def read_record(con) -> dict | None:
    found = read_kv_record(con, RECORD)
    rec = {"input": {}, "raw": {}, **(found or {})}
    return rec if rec["input"] else None


def source_selectors(manifest: Path) -> dict[str, str] | None:
    """{"<source>.<entity>" (the raw table): "source:<source_name>.<table_name>"} from dbt's manifest."""
    try:
        data = json.loads(manifest.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    out = {}
    for src in data.get("sources", {}).values():
        schema = str(src.get("schema") or "")
        if schema.startswith("raw_"):
            out[f"{schema[len('raw_'):]}.{src.get('identifier') or src['name']}"] = \
                f"source:{src['source_name']}.{src['name']}"
    return out


def plan(con, inputs: dict[str, str], manifest: Path, *, mode: str = "auto", target: str = "duckdb",
         force: bool = False) -> dict:
    """{"mode": "full" | "selected", "reason", "select": [selectors], "changed": [raw tables], "raw_keys"}."""
    if mode not in MODES:
        raise ValueError(f"CXW_DBT_SELECT={mode!r}: expected one of {list(MODES)}")
    keys = raw_table_keys(con) if target == "duckdb" else {}

    def full(reason: str, changed: list[str] | None = None) -> dict:
        return {"mode": "full", "reason": reason, "select": [], "changed": changed or [], "raw_keys": keys}

    if mode == "full":
        return full("CXW_DBT_SELECT=full")
    if target != "duckdb":
        return full(f"target {target}: selection is implemented for DuckDB")
    if force:
        return full("CXW_FORCE_BUILD=1")
    rec = read_record(con)
    if rec is None:
        return full("no record of the last successful build")
    differ = [k for k in sorted(set(inputs) | set(rec["input"])) if inputs.get(k) != rec["input"].get(k)]
    if differ:
        names = {"args": "dbt arguments / --vars", "project": "dbt project files", "versions": "dbt / DuckDB version",
                 "env": "settings the models read"}
        return full("changed since the last build: " + ", ".join(names.get(k, k) for k in differ))
    changed = sorted(t for t in set(keys) | set(rec["raw"]) if keys.get(t) != rec["raw"].get(t))
    if not changed:
        return full("no raw table changed since the last build (a rebuild was asked for)")
    gone = [t for t in changed if t not in keys]
    if gone:
        return full(f"raw tables gone since the last build: {', '.join(gone)}", changed)
    selectors = source_selectors(manifest)
    if selectors is None:
        return full(f"no dbt manifest at {manifest} to map raw tables to dbt sources", changed)
    unknown = [t for t in changed if t not in selectors]
    if unknown:
        return full(f"changed raw tables no dbt source declares: {', '.join(unknown)}", changed)
    select = [f"{selectors[t]}+" for t in changed]
    return {"mode": "selected", "reason": f"{len(changed)} raw tables changed: {', '.join(changed)}",
            "select": select, "changed": changed, "raw_keys": keys}


def selection_args(p: dict) -> list[str]:
    return ["--select", *p["select"]] if p["mode"] == "selected" else []


COMPILED_FIELDS = ("compiled", "compiled_code", "compiled_path", "extra_ctes", "extra_ctes_injected", "relation_name")


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def complete_manifest(previous: dict | None, path: Path) -> int:
    """After a selected build: dbt's manifest holds compiled SQL only for the nodes it ran, so the docs (which reuse
    the build's manifest, cxw.docs) would show none for the others. A selected build runs only when the project, the
    vars and the versions are those of the last build (`plan`), so a node that did not run compiles as it did then:
    its compiled fields are taken from the previous manifest where the node's checksum is the same. Returns how many
    nodes were completed."""
    manifest = read_manifest(path)
    if not previous or manifest is None:
        return 0
    done = 0
    old_nodes = previous.get("nodes") or {}
    for uid, node in (manifest.get("nodes") or {}).items():
        old = old_nodes.get(uid)
        if (node.get("compiled_code") is None and old and old.get("compiled_code") is not None
                and old.get("checksum") == node.get("checksum")):
            node.update({k: old[k] for k in COMPILED_FIELDS if k in old})
            done += 1
    if done:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest))
        tmp.replace(path)
    return done
