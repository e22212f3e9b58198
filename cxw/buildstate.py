"""Skip work that cannot change what BI sees: the build fingerprint.

A build's inputs are the raw content (`cxw.loader.content_fingerprint`: the loads that brought rows not already
held, and the raw tables' columns), the dbt project and GE suites (file contents), and the settings the models read
(KPI window, PII salt, target). `dbt_build` computes the fingerprint; when it equals the fingerprint of the build
that produced the generation BI currently reads, the run has nothing new to build, audit or publish, and
`dbt_build` / `validate` / `publish` / `export_alerts` are skipped (Airflow state `skipped`, the summary says why).

`publish` records the fingerprint of the build it published (`state/_pipeline/published_build.json`), after the
switch; a crash in between only costs one unnecessary rebuild. `CXW_FORCE_BUILD=1` disables the skip.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .config import DBT_PROJECT_DIR, REPO_ROOT, dbt_target, paths

# What the models are built with besides raw data and code: the KPI window (dbt --vars) and what profiles.yml reads
# from the environment; secrets are hashed, not stored. (The fingerprint's keys are the variables' names, as
# before the window became --vars, so a fingerprint recorded then still matches.)
BUILD_ENV = ("CXW_KPI_WINDOW_START", "CXW_KPI_WINDOW_END", "CXW_PII_SALT", "CXW_DBT_TARGET", "CXW_PG_DBNAME",
             "CXW_PG_SCHEMA")
# the models, the analyses that run after them (issue 19) and the gate suites that audit them
CODE_DIRS = (DBT_PROJECT_DIR, REPO_ROOT / "cxw" / "analytics", REPO_ROOT / "cxw" / "gate")
_SKIP_PARTS = {"target", "logs", "dbt_packages", "__pycache__"}


def _state_dir() -> Path:
    return paths().state / "_pipeline"


def hash_code_files(h, root: Path, rel_to: Path) -> None:
    """Add the code files under ``root`` (names relative to ``rel_to``, and contents) to the hash ``h``: no tool
    state (target/, logs/, caches, dot files - dbt writes .user.yml on its first run, compiled or parse files)."""
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(rel_to)
        if (f.is_file() and not (_SKIP_PARTS & set(rel.parts)) and f.suffix not in (".pyc", ".msgpack")
                and not any(part.startswith(".") for part in rel.parts)):
            h.update(f"{rel}\n".encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())


def code_fingerprint() -> str:
    h = hashlib.sha256()
    for root in CODE_DIRS:
        hash_code_files(h, root, REPO_ROOT)
    return h.hexdigest()


def raw_content_fingerprint() -> str | None:
    """The build database's raw content fingerprint, or None when it has none yet."""
    if dbt_target() == "postgres":
        import psycopg2

        from .loader_postgres import pg_dsn

        try:
            con = psycopg2.connect(pg_dsn())
        except psycopg2.OperationalError:
            return None
        try:
            with con.cursor() as cur:
                cur.execute("select to_regclass('_cxw.raw_tables')")
                if cur.fetchone()[0] is None:
                    return None
                cur.execute("select source, entity, fingerprint from _cxw.raw_tables order by 1, 2")
                return hashlib.sha256(json.dumps(cur.fetchall()).encode()).hexdigest()
        finally:
            con.close()
    from .loader import connect_build_db, content_fingerprint

    db = paths().build_db
    if not db.exists():
        return None
    con, _ = connect_build_db(db, read_only=True)  # waits while another run writes it
    try:
        if not con.execute("select count(*) from information_schema.tables where table_schema = '_cxw' "
                           "and table_name = 'raw_table_loads'").fetchone()[0]:
            return None
        return content_fingerprint(con)
    finally:
        con.close()


def _unless_default(value: str, default: str) -> str:
    """"" for a setting at its default (the fingerprint of an unset variable, as before the settings object)."""
    return "" if value == default else value


def build_fingerprint(kpi_window: list | None = None) -> dict:
    """{"fingerprint", "parts"}: the parts say what it covers (secrets only as hashes). ``kpi_window``: the
    [start, end) dbt is given as --vars (default: CXW_KPI_WINDOW_START / _END as set)."""
    from .settings import settings

    s = settings()
    raw = raw_content_fingerprint()
    window = list(kpi_window) if kpi_window is not None else [s.kpi_window_start, s.kpi_window_end]
    env = {"CXW_KPI_WINDOW_START": window[0] or "", "CXW_KPI_WINDOW_END": window[1] or "",
           "CXW_PII_SALT": s.pii_salt or "", "CXW_DBT_TARGET": _unless_default(s.dbt_target, "duckdb"),
           "CXW_PG_DBNAME": _unless_default(s.pg_dbname, "cx_warehouse"),
           "CXW_PG_SCHEMA": _unless_default(s.pg_schema, "public")}
    env["CXW_PII_SALT"] = hashlib.sha256(env["CXW_PII_SALT"].encode()).hexdigest()[:16]
    parts = {"raw_content": raw, "code": code_fingerprint(), "env": env}
    fp = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"fingerprint": fp if raw else None, "parts": parts}


def _read(name: str) -> dict | None:
    f = _state_dir() / name
    try:
        return json.loads(f.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write(name: str, data: dict) -> None:
    d = _state_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{name}.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, d / name)


def unchanged_since_publication(fp: str | None) -> dict | None:
    """The published build's record when `fp` equals it and BI still reads that generation, else None."""
    from .settings import settings

    if not fp or settings().force_build:
        return None
    rec = _read("published_build.json")
    if not rec or rec.get("build_fingerprint") != fp:
        return None
    from .publish import current_generation

    try:
        if current_generation() != rec.get("generation_id"):
            return None
    except Exception:  # an unreadable published file: rebuild and publish again
        return None
    return rec


def record_build(fp: str | None, run_id: str | None, kpi_window: list | None = None) -> None:
    """`kpi_window`: the [start, end) the models were built with; `cxw.erase` rebuilds the published generation's
    marts with the same window."""
    _write("last_build.json", {"build_fingerprint": fp, "run_id": run_id, "kpi_window": kpi_window})


def record_publication(generation_id: str, run_id: str | None) -> None:
    """After a successful publish: the generation BI reads came from the last build."""
    last = _read("last_build.json") or {}
    _write("published_build.json", {"build_fingerprint": last.get("build_fingerprint"),
                                     "built_by_run": last.get("run_id"), "generation_id": generation_id,
                                     "published_by_run": run_id, "kpi_window": last.get("kpi_window")})


def published_build() -> dict | None:
    """The record of the build behind the generation BI reads (None before the first publication)."""
    return _read("published_build.json")


# --- what the build database holds: `_cxw.build_info` ------------------------------------------------------------
# One row written by dbt_build after a successful `dbt build` (and removed before it starts, so a failed or partial
# build has none): the run that built the marts and the end of the data interval they cover. publish and validate
# read it in the same connection as the marts, so the published generation is labelled with the interval its data
# really covers even when another run built in between (contracts.md, "Data interval of a generation").

BUILD_INFO = "_cxw.build_info"


def clear_build_info(con) -> None:
    con.execute("create schema if not exists _cxw")
    con.execute(f"drop table if exists {BUILD_INFO}")


def write_build_info(con, run_id: str | None, data_interval_end: str | None, kpi_window: list,
                     build_fingerprint: str | None) -> None:
    con.execute("create schema if not exists _cxw")
    con.execute(f"create or replace table {BUILD_INFO} (run_id varchar, data_interval_end varchar, "
                "kpi_window_start varchar, kpi_window_end varchar, build_fingerprint varchar, built_at timestamp)")
    con.execute(f"insert into {BUILD_INFO} values (?, ?, ?, ?, ?, now()::timestamp)",
                [run_id, data_interval_end, kpi_window[0], kpi_window[1], build_fingerprint])


def read_build_info(con) -> dict | None:
    """The build's record from an open connection to the build database, or None (no build recorded)."""
    if not con.execute("select count(*) from information_schema.tables where table_schema = '_cxw' "
                       "and table_name = 'build_info'").fetchone()[0]:
        return None
    row = con.execute(f"select run_id, data_interval_end, kpi_window_start, kpi_window_end, build_fingerprint "
                      f"from {BUILD_INFO}").fetchone()
    return dict(zip(("run_id", "data_interval_end", "kpi_window_start", "kpi_window_end", "build_fingerprint"),
                    row)) if row else None


# Records of what a step of the build was made from (`cxw.dbt_select`: `_cxw.dbt_built_from`; `cxw.analytics.reuse`:
# `_cxw.analyzed_with`), rows (kind, name, value) in the build database beside the loader's bookkeeping: written in the
# transaction of what they describe, removed before the step starts, so a failed step leaves none.
def read_kv_record(con, qualified: str) -> dict[str, dict[str, str]] | None:
    """The record table ``qualified`` (``_cxw.<name>``) as {kind: {name: value}}; None when there is no such table."""
    schema, table = qualified.split(".", 1)
    if not con.execute("select count(*) from information_schema.tables where table_schema = ? "
                       "and table_name = ?", [schema, table]).fetchone()[0]:
        return None
    rec: dict[str, dict[str, str]] = {}
    for kind, name, value in con.execute(f"select kind, name, value from {qualified}").fetchall():
        rec.setdefault(kind, {})[name] = value
    return rec


def write_kv_record(con, qualified: str, rows: list[list[str]]) -> None:
    """Replace the record table ``qualified`` by ``rows`` ([kind, name, value])."""
    con.execute(f"create schema if not exists {qualified.split('.', 1)[0]}")
    con.execute(f"create or replace table {qualified} (kind varchar, name varchar, value varchar)")
    con.executemany(f"insert into {qualified} values (?, ?, ?)", rows)


def clear_kv_record(con, qualified: str) -> None:
    con.execute(f"create schema if not exists {qualified.split('.', 1)[0]}")
    con.execute(f"drop table if exists {qualified}")
