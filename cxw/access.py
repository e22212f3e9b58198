"""Access by audience (issue 18 point 4), configured in one file: access/audiences.yml (CXW_AUDIENCES_FILE).

DuckDB has no roles, so each published generation is copied into one file per audience holding only what the
audience may read:

    published/audiences/<audience>/generations/<generation>.duckdb   derived from published/generations/<generation>
    published/audiences/<audience>/cx_warehouse.duckdb               hard link to the current one, os.replace()d

An audience generation is a function of the main generation of the same id and of the audience's configuration:
`publish` derives them before BI's main file is switched (a failure switches nothing), `rollback` switches every
audience to the generation it switches the main file to, an erasure re-derives them from the rewritten main
generations, and retention / pruning drop those whose main generation is gone (`sync`). Each audience file keeps the
published storage version, the descriptions (COMMENT ON) of what it holds, the main file's `publication` row and its
own `publication_tables` and `publication_audience`. An audience reading everything (`tables: "*"`, no
`deny_columns`, e.g. admin) gets a hard link to the main generation file itself: no copy, no extra disk.

On the PostgreSQL target the same configuration becomes roles with GRANTs and row-level security
(`apply_postgres_access`, `./cx pg-access`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import REPO_ROOT, paths

log = logging.getLogger(__name__)

PUBLISHED_FILE = "cx_warehouse.duckdb"
AUDIENCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
AUDIENCE_DOCS = ("Which audience this file is for (config/access: access/audiences.yml).", {
    "audience": "Audience whose file this is; it holds only the tables, columns and rows that audience may read.",
    "description": "What the audience may read, as configured.",
    "config_fingerprint": "Digest of the audience's entry in the access configuration this file was derived with.",
    "content_fingerprint": "Digest of this file's tables (row counts and fingerprints) and descriptions.",
})


class AccessConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Audience:
    name: str
    description: str
    tables: object  # "*" or {qualified: {columns, deny_columns, rows}}
    deny_columns: tuple[str, ...]
    row_scope: dict  # PostgreSQL only: {qualified: column}
    raw: dict

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self.name, self.raw], sort_keys=True, default=str).encode()).hexdigest()

    @property
    def reads_everything(self) -> bool:
        """Every table, column and row: the audience's file is the main generation file (hard-linked)."""
        return self.tables == "*" and not self.deny_columns

    def table_rule(self, qualified: str) -> dict | None:
        if self.tables == "*":
            return {}
        return self.tables.get(qualified)


def config_path() -> Path:
    from .settings import settings

    return Path(settings().audiences_file or REPO_ROOT / "access" / "audiences.yml")


def load_audiences(path: Path | None = None) -> dict[str, Audience]:
    import yaml

    path = path or config_path()
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise AccessConfigError(f"no access configuration at {path} (CXW_AUDIENCES_FILE)") from None
    entries = doc.get("audiences")
    if not isinstance(entries, dict) or not entries:
        raise AccessConfigError(f"{path}: 'audiences' must map audience names to their entries")
    out = {}
    for name, e in entries.items():
        if not isinstance(name, str) or not AUDIENCE_NAME.match(name):
            raise AccessConfigError(f"{path}: audience name {name!r} must match {AUDIENCE_NAME.pattern}")
        if not isinstance(e, dict):
            raise AccessConfigError(f"{path}: audience {name}: an entry must be a mapping")
        unknown = set(e) - {"description", "tables", "deny_columns", "postgres"}
        if unknown:
            raise AccessConfigError(f"{path}: audience {name}: unknown keys {sorted(unknown)}")
        tables = e.get("tables")
        if tables != "*":
            if not isinstance(tables, dict) or not tables:
                raise AccessConfigError(f"{path}: audience {name}: 'tables' must be \"*\" or a mapping of tables")
            for q, rule in tables.items():
                rule = tables[q] = rule or {}
                if not isinstance(q, str) or q.count(".") != 1:
                    raise AccessConfigError(f"{path}: audience {name}: table {q!r} must be <schema>.<table>")
                bad = set(rule) - {"columns", "deny_columns", "rows"}
                if bad:
                    raise AccessConfigError(f"{path}: audience {name}, table {q}: unknown keys {sorted(bad)}")
        pg = e.get("postgres") or {}
        out[name] = Audience(name=name, description=str(e.get("description") or ""), tables=tables,
                             deny_columns=tuple(e.get("deny_columns") or ()), row_scope=dict(pg.get("row_scope") or {}),
                             raw=e)
    return out


@dataclass(frozen=True)
class TablePlan:
    schema: str
    table: str
    columns: tuple[str, ...]
    rows: str | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


def plan(audience: Audience, published: dict[str, list[str]], strict: bool = False) -> list[TablePlan]:
    """What ``audience`` reads of a published file whose tables are ``published`` ({schema.table: [columns]}):
    the tables, the columns in their published order, and the row predicate. A configured table or column the file
    does not have is left out with a warning (``strict``: AccessConfigError; tests/cxw/test_access_audiences.py
    checks the configuration against a real build strictly). Never more than configured: a table left with no
    column is left out."""
    def problem(msg: str) -> None:
        if strict:
            raise AccessConfigError(f"{msg} ({config_path()})")
        log.warning("access: %s (%s)", msg, config_path())

    if audience.tables != "*":
        missing = sorted(set(audience.tables) - set(published))
        if missing:
            problem(f"audience {audience.name}: tables {missing} are not published")
    out = []
    for q in sorted(published):
        rule = audience.table_rule(q)
        if rule is None:
            continue
        cols = published[q]
        allow = rule.get("columns")
        if allow is not None and set(allow) - set(cols):
            problem(f"audience {audience.name}, table {q}: columns {sorted(set(allow) - set(cols))} are not published")
        deny = set(rule.get("deny_columns") or ())
        if deny - set(cols):
            problem(f"audience {audience.name}, table {q}: deny_columns {sorted(deny - set(cols))} are not published")
        deny |= set(audience.deny_columns)
        keep = tuple(c for c in cols if (allow is None or c in allow) and c not in deny)
        if not keep:
            problem(f"audience {audience.name}, table {q}: no column left to publish")
            continue
        s, t = q.split(".", 1)
        out.append(TablePlan(s, t, keep, rule.get("rows")))
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- DuckDB audience files -------------------------------------------------------------------------------------------

def audiences_dir() -> Path:
    return paths().published_dir / "audiences"


def audience_db(audience: str) -> Path:
    return audiences_dir() / audience / PUBLISHED_FILE


def audience_generations_dir(audience: str) -> Path:
    return audiences_dir() / audience / "generations"


def _published_tables(con, catalog: str) -> dict[str, list[str]]:
    from .publish import PUBLISHED_SCHEMAS

    cols: dict[str, list[str]] = {}
    for s, t, c in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns where table_catalog = ? "
            "and table_schema in (select unnest(?::varchar[])) order by table_schema, table_name, ordinal_position",
            [catalog, list(PUBLISHED_SCHEMAS)]).fetchall():
        cols.setdefault(f"{s}.{t}", []).append(c)
    return cols


def _unchanged_since(con, prev_main: Path) -> set[str]:
    """The tables of the main generation attached as ``src`` whose recorded fingerprint and descriptions equal those
    of ``prev_main``'s (attached here as ``prev``, detached again)."""
    from .publish import published_comments

    con.execute(f"attach '{prev_main}' as prev (read_only)")
    try:
        same = {n for n, in con.execute("select n.table_name from src.main.publication_tables n join "
                                        "prev.main.publication_tables o using (table_name) "
                                        "where n.row_count = o.row_count and n.fingerprint = o.fingerprint").fetchall()}
        new_docs, old_docs = published_comments(con, "src"), published_comments(con, "prev")
    finally:
        con.execute("detach prev")
    return {n for n in same if new_docs.get(n) == old_docs.get(n)}


def derive_audience_file(main_generation: Path, audience: Audience, out: Path, previous: Path | None = None) -> dict:
    """Write ``out`` (atomically: a temp file renamed into place) with what ``audience`` may read of the published
    generation file ``main_generation``. With ``previous`` (the main generation published before it, whose audience
    file was derived with the audience's current configuration) the file starts as a copy of that audience file and
    only the tables whose main table changed, or that have a row predicate (it may read other tables), are written."""
    from .freshness import COLUMNS as FRESHNESS_COLUMNS
    from .publish import (PUBLICATION_DOCS, _drop_all_but, connect_new_generation_file, content_fingerprint,
                          published_comments, table_fingerprint, write_comments)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    base = out.with_name(previous.name) if previous is not None else None
    if base is not None and (not previous.exists() or not base.exists() or Path(str(base) + ".wal").exists()
                             or _audience_config_fingerprint(base) != audience.fingerprint):
        base = None
    if base is not None:
        shutil.copyfile(base, tmp)
    con = connect_new_generation_file(tmp)
    try:
        db = con.execute("select current_database()").fetchone()[0]
        con.execute(f"attach '{main_generation}' as src (read_only)")
        tables = plan(audience, _published_tables(con, "src"))
        src_docs = published_comments(con, "src")
        fps, docs, kept = {}, {}, set()
        if base is not None:
            unchanged = _unchanged_since(con, previous)
            recorded = {n: (int(c), fp) for n, c, fp in con.execute(
                f"select table_name, row_count, fingerprint from {_q(db)}.main.publication_tables").fetchall()}
            kept = {tp.qualified for tp in tables if not tp.rows and tp.qualified in unchanged
                    and tp.qualified in recorded}
            con.execute(f"use {_q(db)}")
            _drop_all_but(con, kept)
            fps = {n: recorded[n] for n in kept}
            docs = {n: {"table": src_docs.get(n, {}).get("table"),
                        "columns": {c: src_docs.get(n, {"columns": {}})["columns"].get(c) for c in tp.columns}}
                    for tp in tables if (n := tp.qualified) in kept}
        con.execute("use src")  # row predicates name the published tables unqualified: they read the main file
        for tp in tables:
            if tp.qualified in kept:
                continue
            cols = ", ".join(_q(c) for c in tp.columns)
            con.execute(f"create schema if not exists {_q(db)}.{_q(tp.schema)}")
            con.execute(f"create table {_q(db)}.{_q(tp.schema)}.{_q(tp.table)} as select {cols} from "
                        f"{_q(tp.schema)}.{_q(tp.table)}" + (f" where ({tp.rows})" if tp.rows else ""))
            d = src_docs.get(tp.qualified, {"table": None, "columns": {}})
            docs[tp.qualified] = {"table": d.get("table"),
                                  "columns": {c: d["columns"].get(c) for c in tp.columns}}
        con.execute(f"use {_q(db)}")
        for tp in tables:
            if tp.qualified not in kept:
                fps[tp.qualified] = table_fingerprint(con, f"{_q(tp.schema)}.{_q(tp.table)}")
        write_comments(con, {k: v for k, v in docs.items() if k not in kept})
        con.execute("create table main.publication as select * from src.main.publication")
        # how fresh each source is (cxw/freshness.py; no record of a person): every audience reads it. A generation
        # published before it existed has none: the audience's file gets the empty table.
        if con.execute("select count(*) from information_schema.tables where table_catalog = 'src' and "
                       "table_schema = 'main' and table_name = 'publication_freshness'").fetchone()[0]:
            con.execute("create table main.publication_freshness as select * from src.main.publication_freshness")
        else:
            con.execute(f"create table main.publication_freshness ({FRESHNESS_COLUMNS})")
        con.execute("detach src")
        con.execute("create table main.publication_tables (table_name varchar, row_count bigint, "
                    "fingerprint varchar)")
        if fps:  # an audience may read none of a partial build's tables: its file then holds the publication only
            con.executemany("insert into main.publication_tables values (?, ?, ?)",
                            [[k, v[0], v[1]] for k, v in sorted(fps.items())])
        content_fp = content_fingerprint(fps, docs)
        con.execute("create table main.publication_audience (audience varchar, description varchar, "
                    "config_fingerprint varchar, content_fingerprint varchar)")
        con.execute("insert into main.publication_audience values (?, ?, ?, ?)",
                    [audience.name, audience.description, audience.fingerprint, content_fp])
        write_comments(con, {f"main.{t}": {"table": d, "columns": c} for t, (d, c) in
                             [*PUBLICATION_DOCS.items(), ("publication_audience", AUDIENCE_DOCS)]})
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(tmp, out)
    return {"tables": {k: v[0] for k, v in fps.items()}, "content_fingerprint": content_fp,
            "copied": sorted(kept)}


def _audience_config_fingerprint(path: Path) -> str | None:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except Exception:
        return None
    try:
        row = con.execute("select config_fingerprint from main.publication_audience").fetchone()
        return row[0] if row else None
    except Exception:
        return None
    finally:
        con.close()


def derive_generation(main_generation: Path, audiences: dict[str, Audience] | None = None,
                      force: bool = False, previous: Path | None = None) -> dict:
    """Derive every audience's file of one main generation (those already derived with the audience's current
    configuration are kept unless ``force``). ``previous``: the main generation this one was published from
    (publish copied it): each audience file starts from that generation's (derive_audience_file)."""
    audiences = load_audiences() if audiences is None else audiences
    done = {}
    for name, aud in audiences.items():
        out = audience_generations_dir(name) / main_generation.name
        if aud.reads_everything:
            # the audience file is the main generation itself: a hard link (no copy; a copy where links are refused)
            if not force and out.exists() and os.path.samefile(out, main_generation):
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".tmp-{out.name}")
            tmp.unlink(missing_ok=True)
            try:
                os.link(main_generation, tmp)
            except OSError:
                shutil.copyfile(main_generation, tmp)
            os.replace(tmp, out)
            done[name] = {"linked": str(main_generation)}
            continue
        if not force and out.exists() and _audience_config_fingerprint(out) == aud.fingerprint:
            continue
        done[name] = derive_audience_file(main_generation, aud, out, previous=None if force else previous)
    return done


def switch_audiences(generation: str | None, audiences: dict[str, Audience] | None = None) -> dict:
    """Point every audience's file at its derivation of ``generation`` (None: remove the audience files)."""
    from .publish import _switch

    audiences = load_audiences() if audiences is None else audiences
    out = {}
    for name in audiences:
        link = audience_db(name)
        if generation is None:
            link.unlink(missing_ok=True)
            continue
        target = audience_generations_dir(name) / f"{generation}.duckdb"
        if not target.exists():
            raise RuntimeError(f"audience {name} has no file of generation {generation} (derive it first)")
        _switch(target, link)
        out[name] = generation
    return out


def sync(force: bool = False) -> dict:
    """Bring the audience files in step with the main generations: derive the missing or stale ones (``force``:
    all, after an erasure rewrote the main generations), drop those whose main generation is gone and the
    directories of audiences no longer configured, and switch every audience to the main file's generation."""
    from .publish import _clean_orphans, current_generation, generations

    audiences = load_audiences()
    root = audiences_dir()
    gens = generations()
    kept = {g.name for g in gens}
    report: dict = {"derived": {}, "dropped": [], "removed_audiences": []}
    if root.exists():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if d.name not in audiences:
                shutil.rmtree(d)  # an audience removed from the configuration reads nothing any more
                report["removed_audiences"].append(d.name)
    for name in audiences:
        gdir = audience_generations_dir(name)
        gdir.mkdir(parents=True, exist_ok=True)
        _clean_orphans(gdir, gdir.parent)
        for f in gdir.glob("[0-9]*.duckdb"):
            if f.name not in kept:
                f.unlink()
                Path(str(f) + ".wal").unlink(missing_ok=True)
                report["dropped"].append(f"{name}/{f.stem}")
    for g in gens:
        derived = derive_generation(g, audiences, force=force)
        if derived:
            report["derived"][g.stem] = sorted(derived)
    cur = current_generation()
    report["switched_to"] = cur
    switch_audiences(cur if cur in {g.stem for g in gens} else None, audiences)
    return report


# --- PostgreSQL: roles, GRANTs, row-level security -------------------------------------------------------------------

def pg_role(prefix: str, audience: str) -> str:
    return f"{prefix}{audience}"


def apply_postgres_access(conn, prefix: str | None = None, audiences: dict[str, Audience] | None = None,
                          schemas: dict[str, str] | None = None, commit: bool = True, *,
                          extra_readable: tuple[str, ...] = ()) -> dict:
    """Make the audiences roles of the PostgreSQL database ``conn`` (psycopg2, a role that may create roles and owns
    the marts): one NOLOGIN role per audience (``prefix`` + name; CXW_PG_ROLE_PREFIX, default ``cxw_``), USAGE on the
    published schemas, SELECT on its tables (on its columns where it reads only some), and row-level security where
    it reads only some rows (the configured ``rows`` predicate and, for ``postgres.row_scope``, the rows whose column
    value cxw_access.row_scopes lists for the signed-in user). Idempotent: run after every build (dbt recreates the
    tables; their grants and policies go with them). Users are members of an audience role:
    ``grant cxw_cx_agent to alice`` and ``insert into cxw_access.row_scopes values ('alice',
    'cx.cx_detractor_alerts', 'email')``.

    ``schemas`` maps each published schema (core, kpi, cx: the names audiences.yml uses) to the schema that holds it
    here (default: the same name; publish on PostgreSQL passes the serving schemas, cxw/publish_postgres.py);
    ``extra_readable``: schemas every audience reads whole (the publication record). ``commit=False`` leaves the
    transaction open (publish grants inside its swap transaction)."""
    from psycopg2 import sql

    from .publish import PUBLISHED_SCHEMAS

    if prefix is None:
        from .settings import settings

        prefix = settings().pg_role_prefix
    audiences = load_audiences() if audiences is None else audiences
    Id = sql.Identifier
    phys = dict(schemas) if schemas else {s: s for s in PUBLISHED_SCHEMAS}
    logical = {v: k for k, v in phys.items()}
    report: dict = {"roles": {}, "row_security": {}}
    with conn.cursor() as cur:
        cur.execute("select table_schema, table_name, column_name from information_schema.columns "
                    "where table_schema = any(%s) and table_name in (select table_name from information_schema.tables "
                    "t where t.table_schema = columns.table_schema and t.table_type = 'BASE TABLE') "
                    "order by table_schema, table_name, ordinal_position", [list(phys.values())])
        published: dict[str, list[str]] = {}
        for s, t, c in cur.fetchall():
            published.setdefault(f"{logical[s]}.{t}", []).append(c)
        plans = {name: plan(aud, published) for name, aud in audiences.items()}
        cur.execute("create schema if not exists cxw_access")
        cur.execute("create table if not exists cxw_access.row_scopes (member name not null, table_name text not null, "
                    "value text not null, primary key (member, table_name, value))")
        for name, aud in audiences.items():
            role = pg_role(prefix, name)
            cur.execute("select 1 from pg_roles where rolname = %s", [role])
            if not cur.fetchone():
                cur.execute(sql.SQL("create role {} nologin").format(Id(role)))
            # start from nothing: a table or column taken out of the configuration is revoked
            for s in list(phys.values()) + list(extra_readable):
                cur.execute("select 1 from information_schema.schemata where schema_name = %s", [s])
                if cur.fetchone():
                    cur.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(Id(s), Id(role)))
                    cur.execute(sql.SQL("revoke usage on schema {} from {}").format(Id(s), Id(role)))
            for q, cols in published.items():  # column grants survive a table-level revoke
                s, t = q.split(".", 1)
                cur.execute(sql.SQL("revoke select ({}) on {}.{} from {}").format(
                    sql.SQL(", ").join(Id(c) for c in cols), Id(phys[s]), Id(t), Id(role)))
            for s in extra_readable:
                cur.execute("select 1 from information_schema.schemata where schema_name = %s", [s])
                if not cur.fetchone():
                    continue
                cur.execute(sql.SQL("grant usage on schema {} to {}").format(Id(s), Id(role)))
                cur.execute(sql.SQL("grant select on all tables in schema {} to {}").format(Id(s), Id(role)))
            cur.execute(sql.SQL("grant usage on schema cxw_access to {}").format(Id(role)))
            cur.execute(sql.SQL("grant select on cxw_access.row_scopes to {}").format(Id(role)))
            granted = []
            for tp in plans[name]:
                cur.execute(sql.SQL("grant usage on schema {} to {}").format(Id(phys[tp.schema]), Id(role)))
                target = sql.SQL("{}.{}").format(Id(phys[tp.schema]), Id(tp.table))
                if list(tp.columns) == published[tp.qualified]:
                    cur.execute(sql.SQL("grant select on {} to {}").format(target, Id(role)))
                else:
                    cur.execute(sql.SQL("grant select ({}) on {} to {}").format(
                        sql.SQL(", ").join(Id(c) for c in tp.columns), target, Id(role)))
                granted.append(tp.qualified)
            report["roles"][role] = granted
        # row-level security: on every table some audience reads only some rows of
        restricted = {tp.qualified for name in audiences for tp in plans[name] if tp.rows}
        restricted |= {q for aud in audiences.values() for q in aud.row_scope}
        # start from nothing here too: this step's policies go, row security stays only where still configured
        cur.execute("select schemaname, tablename, policyname from pg_policies where schemaname = any(%s) "
                    "and policyname like 'cxw\\_%%'", [list(phys.values())])
        for s, t, pol in cur.fetchall():
            cur.execute(sql.SQL("drop policy {} on {}.{}").format(Id(pol), Id(s), Id(t)))
        cur.execute("select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where c.relrowsecurity and n.nspname = any(%s)", [list(phys.values())])
        for s, t in cur.fetchall():
            if f"{logical[s]}.{t}" not in restricted:
                cur.execute(sql.SQL("alter table {}.{} disable row level security").format(Id(s), Id(t)))
        for q in sorted(restricted):
            if q not in published:
                raise AccessConfigError(f"postgres.row_scope: table {q} is not published")
            s, t = q.split(".", 1)
            target = sql.SQL("{}.{}").format(Id(phys[s]), Id(t))
            cur.execute(sql.SQL("alter table {} enable row level security").format(target))
            policies = {}
            for name, aud in audiences.items():
                tp = next((p for p in plans[name] if p.qualified == q), None)
                if tp is None:
                    continue
                preds = [f"({_in_schemas(tp.rows, phys)})"] if tp.rows else []
                col = aud.row_scope.get(q)
                if col:
                    if col not in tp.columns:
                        raise AccessConfigError(f"audience {name}: row_scope column {q}.{col} is not readable")
                    preds.append(f"{_q(col)}::text in (select value from cxw_access.row_scopes "
                                 f"where member = current_user and table_name = '{q}')")
                using = " and ".join(preds) or "true"
                cur.execute(sql.SQL("create policy {} on {} for select to {} using (" + using.replace("%", "%%")
                                    + ")").format(Id(f"cxw_{name}"), target, Id(pg_role(prefix, name))))
                policies[name] = using
            report["row_security"][q] = policies
    if commit:
        conn.commit()
    return report


def _in_schemas(predicate: str, phys: dict[str, str]) -> str:
    """A configured row predicate with its published schema names (``cx.cx_detractor_alerts``) replaced by the
    schemas that hold them here (``bi_cx.cx_detractor_alerts`` on PostgreSQL's serving schemas)."""
    import re

    if all(k == v for k, v in phys.items()):
        return predicate
    names = "|".join(re.escape(k) for k in phys)
    return re.sub(rf'(?<![\w."])({names})\.(?=[A-Za-z_"])', lambda m: phys[m.group(1)] + ".", predicate)


def pg_access_from_env() -> dict:
    """`./cx pg-access`: apply the audiences to the serving schemas of the PostgreSQL target of the CXW_PG_*
    settings (bi_core, bi_kpi, bi_cx and the publication record bi_meta; cxw/publish_postgres.py: each publish's
    swap does it too, in its transaction). The build schemas core, kpi, cx are not granted: BI reads what the gate
    passed."""
    import psycopg2

    from .loader_postgres import pg_dsn
    from .publish_postgres import META, SERVING

    conn = psycopg2.connect(pg_dsn())
    try:
        return apply_postgres_access(conn, schemas=SERVING, extra_readable=(META,))
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m cxw.access postgres` (`./cx pg-access`): roles, GRANTs and RLS on the PostgreSQL target;
    `python -m cxw.access sync`: derive the audience files of the kept generations again (after editing
    access/audiences.yml; the next publish does it too)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="cx pg-access", description=main.__doc__)
    ap.add_argument("what", choices=["postgres", "sync"], nargs="?", default="postgres")
    args = ap.parse_args(argv)
    try:
        if args.what == "postgres":
            report = pg_access_from_env()
        else:
            from .warehouse_lock import maintenance

            with maintenance("audiences"):
                report = sync()
    except AccessConfigError as exc:
        print(f"cx: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
