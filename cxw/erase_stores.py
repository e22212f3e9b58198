"""The stores erase rewrites without a person's rows (steps 3-7 of `./cx erase`, cxw/erase.py, which runs them in
order under the warehouse lock): raw Parquet parts and their `_load.json`, dead letters, alert exports
and run artefacts, the build database's snapshots, the rebuild from raw and the kept generations."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .config import paths
from .settings import settings
from .erase_person import ERASED, Person, Targets, _sql_lit, normalize_name, normalize_phone, pii_hash


# ---------------------------------------------------------------------------------------------------------------
# 3. raw Parquet
# ---------------------------------------------------------------------------------------------------------------

def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, dst: Path) -> None:
    """fsync the finished `tmp`, rename it over `dst`, drop a stale DuckDB WAL of `dst`, fsync the directory."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)
    Path(str(dst) + ".wal").unlink(missing_ok=True)
    _fsync_dir(dst.parent)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.erase-tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


_EMAIL_EDGE = ("(^|[^a-z0-9._%+-])", "($|[^a-z0-9._-]|[.]($|[^a-z0-9]))")


def _row_predicate(cols: dict[str, str], wanted: dict[str, set], emails: set[str],
                   extra: list[str] | None = None) -> str | None:
    """SQL true for a row of the person: a targeted column holds one of their values, an `extra` predicate holds,
    or a text column contains one of their e-mail addresses."""
    ors = list(extra or [])
    for c, vals in (wanted or {}).items():
        if c not in cols:
            continue
        quoted = '"' + c.replace('"', '""') + '"'
        ors.append(f"cast({quoted} as varchar) in ({', '.join(_sql_lit(str(v)) for v in sorted(vals, key=str))})")
    for c, typ in cols.items():
        if typ == "VARCHAR" and not c.startswith("_") and emails:
            quoted = '"' + c.replace('"', '""') + '"'
            # the whole address: not inside a longer one (x.anna@… is not anna@…)
            ors.extend(f"(contains(lower({quoted}), {_sql_lit(e)}) and regexp_matches(lower({quoted}), "
                       f"{_sql_lit(_EMAIL_EDGE[0] + re.escape(e) + _EMAIL_EDGE[1])}))" for e in sorted(emails))
    return " or ".join(f"coalesce({o}, false)" for o in ors) if ors else None


def erase_raw(raw: Path, targets: Targets, person: Person, audit_id: str, con) -> dict:
    """Rewrite every Parquet part holding a row of the person; returns {"source.entity": rows removed}."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # the _load.json contract's own hash; imported here, not at module level: extractors.common.landing imports
    # pyarrow (≈0.15 s), kept off the import of the erase modules
    from extractors.common.landing import sha256_file

    from .loader import complete_loads

    removed: dict[str, int] = {}
    emails = {e for e in person.emails if e}
    for ld in complete_loads(raw):
        wanted = targets.by_entity.get((ld.source, ld.entity), {})
        if not ld.files:
            continue
        meta = dict(ld.meta)
        changed = False
        load_removed = dup_removed = 0
        for f in ld.files:
            table = pq.read_table(f)
            con.register("erase_part", table)
            try:
                cols = {r[0]: r[1] for r in con.execute("describe select * from erase_part").fetchall()}
                pred = _row_predicate(cols, wanted, emails, targets.sql.get((ld.source, ld.entity)))
                if pred is None:
                    continue
                mask = pa.array(con.execute(f"select not ({pred}) as keep from erase_part").fetchnumpy()["keep"])
                gone = table.num_rows - (pc.sum(mask.cast(pa.int64())).as_py() or 0)
                if not gone:
                    continue
                key = next((k for k in ("id", "reviewId") if k in cols), None)
                if key:
                    hit = con.execute(f'select count(*) - count(distinct "{key}") from erase_part '
                                      f"where {pred}").fetchall()[0][0]
                    dup_removed += int(hit)
            finally:
                con.unregister("erase_part")
            kept = table.filter(mask)
            tmp = Path(f).with_name(f".{Path(f).name}.erase-tmp")
            pq.write_table(kept, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, f)
            _fsync_dir(Path(f).parent)
            for entry in meta.get("files", []):
                if entry.get("path") == Path(f).name:
                    entry["rows"] = kept.num_rows
                    entry["sha256"] = sha256_file(str(f))  # as landing hashes it
            load_removed += gone
            changed = True
        if changed:
            meta["rows"] = int(meta.get("rows") or 0) - load_removed
            meta["duplicates_in_load"] = max(0, int(meta.get("duplicates_in_load") or 0) - dup_removed)
            meta.setdefault("erasures", []).append({"audit_id": audit_id, "rows_removed": load_removed})
            _write_bytes_atomic(ld.path / "_load.json", json.dumps(meta, indent=1, default=str).encode())
            k = f"{ld.source}.{ld.entity}"
            removed[k] = removed.get(k, 0) + load_removed
    return removed


# ---------------------------------------------------------------------------------------------------------------
# 4, 7. dead letters, alert exports, run artefacts
# ---------------------------------------------------------------------------------------------------------------

def needles(person: Person, hashes: set[str], person_ids: set[str]) -> list[str]:
    """Strings whose presence in a file means the file mentions the person (longest first)."""
    out = set()
    for e in person.emails | {e.lower() for e in person.raw_emails} | person.raw_emails:
        if e and len(e) >= 5:
            out.add(e)
    out |= {p for p in person.phones if len(re.sub(r"[^0-9]", "", p)) >= 6}
    out |= {normalize_phone(p) for p in person.phones if len(re.sub(r"[^0-9]", "", p)) >= 6}
    out |= {n for n in person.names if len(n) >= 5}
    out |= {h for h in hashes if h}
    out |= {p for p in person_ids if p and p != "-1" and len(p) >= 8}
    return sorted(out, key=lambda s: (-len(s), s))


def _mentions(text: str, words: list[str]) -> bool:
    low = text.lower()
    return any(w.lower() in low for w in words)


def _redact(text: str, words: list[str]) -> str:
    for w in words:
        text = re.sub(re.escape(w), ERASED, text, flags=re.IGNORECASE)
    return text


def erase_dead_letters(root: Path, words: list[str], audit_id: str) -> int:
    n = 0
    if not root.exists() or not words:
        return 0
    for f in sorted(root.rglob("*.json")):
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if not _mentions(text, words):
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            rec = {}
        if isinstance(rec, dict):
            for k in ("payload", "url"):
                if k in rec:
                    rec[k] = None
            rec = json.loads(_redact(json.dumps(rec, ensure_ascii=False), words))
            rec["erased"] = audit_id
            data = json.dumps(rec, indent=1, ensure_ascii=False).encode()
        else:
            data = json.dumps({"erased": audit_id}).encode()
        _write_bytes_atomic(f, data)
        n += 1
    return n


def erase_alert_exports(root: Path, person_ids: set[str], words: list[str]) -> int:
    """Remove the person's alerts from every drop and their ids from the export ledger. Returns alerts removed."""
    import csv
    import io

    from .alerts import ALERT_COLUMNS, _ledger_file, _write_json_atomic

    removed_ids: set[str] = set()
    if not root.exists():
        return 0
    for drop in sorted(p for p in root.iterdir() if p.is_dir()):
        jl = drop / "alerts.jsonl"
        if not jl.exists():
            continue
        keep, gone = [], []
        for line in jl.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            a = json.loads(line)
            mine = a.get("person_sk") in person_ids or _mentions(json.dumps(a, ensure_ascii=False), words)
            (gone if mine else keep).append(a)
        if not gone:
            continue
        removed_ids |= {a["alert_id"] for a in gone}
        _write_bytes_atomic(jl, "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in keep).encode())
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=ALERT_COLUMNS, lineterminator="\n")
        w.writeheader()
        for a in keep:
            w.writerow({k: ("" if v is None else v) for k, v in a.items()})
        _write_bytes_atomic(drop / "alerts.csv", buf.getvalue().encode())
        mf = drop / "_export.json"
        if mf.exists():
            meta = json.loads(mf.read_text())
            meta["alert_ids"] = [i for i in meta.get("alert_ids", []) if i not in removed_ids]
            meta["alerts"] = len(meta["alert_ids"])
            meta["alerts_erased"] = int(meta.get("alerts_erased", 0)) + len(gone)
            _write_bytes_atomic(mf, json.dumps(meta, indent=1).encode())
    lf = _ledger_file(root)
    if removed_ids and lf.exists():
        exported = json.loads(lf.read_text())["exported"]
        _write_json_atomic(lf, {"exported": {k: v for k, v in exported.items() if k not in removed_ids}})
    return len(removed_ids)


_TEXT_SUFFIXES = {".json", ".jsonl", ".txt", ".log", ".html", ".csv", ".md", ".yml", ".yaml", ".sql", ""}


def redact_text_files(root: Path, words: list[str], skip: tuple[Path, ...] = ()) -> int:
    """Replace the person's values by `[erased]` in the text files under root (run artefacts, dbt logs)."""
    n = 0
    if not root.exists() or not words:
        return 0
    for f in root.rglob("*"):
        if not f.is_file() or f.suffix.lower() not in _TEXT_SUFFIXES or any(s in f.parents for s in skip):
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if _mentions(text, words):
            _write_bytes_atomic(f, _redact(text, words).encode("utf-8"))
            n += 1
    return n


# ---------------------------------------------------------------------------------------------------------------
# 5-6. build database and generations
# ---------------------------------------------------------------------------------------------------------------

def warehouse_keys(build_db: Path, person: Person, keys: dict) -> tuple[set[str], set[str], set[str]]:
    """(e-mail hashes, phone / name hashes, person_ids) of the person in the build database before it is rebuilt:
    the staged hashes of their partners and contacts, and the identity graph's person ids of their records. Only
    e-mail hashes and person ids identify them (a namesake shares the name hash, a household the phone hash)."""
    import duckdb

    email_hashes = {pii_hash(e) for e in person.emails if e}
    hashes = {pii_hash(normalize_phone(p)) for p in person.phones if normalize_phone(p)}
    hashes |= {pii_hash(normalize_name(n)) for n in person.names if normalize_name(n)}
    person_ids: set[str] = set()
    if not build_db.exists():
        return email_hashes, hashes, person_ids
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        def has(schema, table):
            return con.execute("select count(*) from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [schema, table]).fetchall()[0][0]

        pids = [str(p) for p in person.partner_ids]
        cids = sorted(person.contact_ids)
        for table, col, ids in (("stg_odoo__res_partners", "partner_id", pids),
                                ("stg_hubspot__contacts", "contact_id", cids)):
            if ids and has("staging", table):
                for row in con.execute(f"select email_hash, phone_hash, name_hash from staging.{table} "
                                       f"where cast({col} as varchar) in (select unnest(?::varchar[]))",
                                       [ids]).fetchall():
                    email_hashes |= {row[0]} if row[0] else set()
                    hashes |= {h for h in row[1:] if h}
        if has("intermediate", "int_identity_links"):
            person_ids = {r[0] for r in con.execute(
                "select distinct person_id from intermediate.int_identity_links where "
                "(source = 'odoo' and source_id in (select unnest(?::varchar[]))) or "
                "(source = 'hubspot' and source_id in (select unnest(?::varchar[])))", [pids, cids]).fetchall()
                if r[0]}
    finally:
        con.close()
    person_ids.discard("-1")
    return email_hashes, hashes, person_ids


def erase_snapshots(build_db: Path, person: Person, email_hashes: set[str] = frozenset()) -> int:
    """Delete the person's rows (their ids, or their e-mail hash) from the customer-history snapshots (they hold
    history raw no longer has)."""
    from .loader import connect_writer

    if not build_db.exists():
        return 0
    con, _ = connect_writer(build_db)
    n = 0
    try:
        for table, col, ids in (("snap_odoo__res_partners", "partner_id", [str(p) for p in person.partner_ids]),
                                ("snap_hubspot__contacts", "contact_id", sorted(person.contact_ids))):
            if not con.execute("select count(*) from information_schema.tables where table_name = ?",
                                          [table]).fetchall()[0][0]:
                continue
            schema = con.execute("select table_schema from information_schema.tables where table_name = ?",
                                 [table]).fetchall()[0][0]
            n += con.execute(f'delete from "{schema}"."{table}" where cast({col} as varchar) in '
                             "(select unnest(?::varchar[])) or email_hash in (select unnest(?::varchar[]))",
                             [ids, sorted(email_hashes)]).fetchall()[0][0]
        con.execute("checkpoint")
    finally:
        con.close()
    return n


def compact_duckdb(db: Path) -> None:
    """Copy the database into a fresh file and replace it atomically: deleted rows leave no bytes in free blocks."""
    import duckdb

    from .config import duckdb_config

    tmp = db.with_name(f".{db.name}.erase-tmp")
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    con = duckdb.connect(":memory:", config=duckdb_config())
    try:
        con.execute(f"attach '{db}' as src (read_only)")
        con.execute(f"attach '{tmp}' as dst")
        con.execute("copy from database src to dst")
        con.execute("detach src")
        con.execute("checkpoint dst")
        con.execute("detach dst")
    finally:
        con.close()
    _replace_durably(tmp, db)


def erase_analysis_rows(build_db: Path, keys: set[str]) -> int:
    """The analyses' tables (cxw/analytics: written by the `analyze` task, not by dbt) survive the dbt rebuild as the
    last analyze wrote them: their rows holding one of `keys` in a text column are deleted from the build database,
    so the publish below does not carry the person again. The other rows stay as fitted - a model's parameters are
    aggregates, not the person's data (docs/analytics.md); the next analyze refits without the person. Returns rows
    removed."""
    import duckdb

    from .analytics.registry import ANALYSES
    from .analytics.runner import OUTPUT_SCHEMA

    removed = 0
    con = duckdb.connect(str(build_db))
    try:
        con.execute("create temp table erase_keys as select unnest(?::varchar[]) as k", [sorted(keys)])
        for table in sorted({t for a in ANALYSES for t in a.outputs}):
            cols = con.execute("select column_name from information_schema.columns where table_schema = ? "
                               "and table_name = ? and data_type = 'VARCHAR'", [OUTPUT_SCHEMA, table]).fetchall()
            if not cols:
                continue  # absent (analyze has not run yet) or without a text column
            pred = " or ".join(f'"{c}" in (select k from erase_keys)' for c, in cols)
            removed += con.execute(f'delete from "{OUTPUT_SCHEMA}"."{table}" where coalesce({pred}, false)'
                                   ).fetchall()[0][0]
    finally:
        con.close()
    return removed


def rewrite_generation(gen: Path, keys: set[str]) -> int:
    """Rewrite one published generation without the rows holding one of `keys` in a text column, into a fresh file
    that replaces it atomically; the publication's per-table fingerprints are recomputed. Returns rows removed."""
    from .publish import (connect_new_generation_file, content_fingerprint, published_comments, table_fingerprint,
                          write_comments)

    tmp = gen.with_name(f".tmp-erase-{gen.name}")
    tmp.unlink(missing_ok=True)
    removed = 0
    con = connect_new_generation_file(tmp)  # the published storage version, as publish writes it
    try:
        con.execute(f"attach '{gen}' as old (read_only)")
        con.execute("create temp table erase_keys as select unnest(?::varchar[]) as k", [sorted(keys)])
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_catalog = 'old' and table_type = 'BASE TABLE' order by 1, 2").fetchall()
        for s, t in tables:
            cols = con.execute("select column_name from information_schema.columns where table_catalog = 'old' "
                               "and table_schema = ? and table_name = ? and data_type = 'VARCHAR'",
                               [s, t]).fetchall()
            src = f'old."{s}"."{t}"'
            pred = " or ".join(f'"{c}" in (select k from erase_keys)' for c, in cols) or "false"
            con.execute(f'create schema if not exists "{s}"')
            con.execute(f'create table "{s}"."{t}" as select * from {src} where not coalesce({pred}, false)')
            if s != "main" or t not in ("publication", "publication_tables"):
                removed += con.execute(f"select count(*) from {src}").fetchall()[0][0] - \
                    con.execute(f'select count(*) from "{s}"."{t}"').fetchall()[0][0]
        schemas = sorted({s for s, _ in tables})
        write_comments(con, published_comments(con, "old", schemas))  # the descriptions stay with the tables
        con.execute("detach old")
        if removed and con.execute("select count(*) from information_schema.tables where table_name = "
                                   "'publication_tables'").fetchall()[0][0]:
            fps = {}
            for name, in con.execute("select table_name from publication_tables").fetchall():
                s, t = name.split(".", 1)
                fps[name] = table_fingerprint(con, f'"{s}"."{t}"')
                con.execute("update publication_tables set row_count = ?, fingerprint = ? where table_name = ?",
                            [fps[name][0], fps[name][1], name])
            content_fp = content_fingerprint(fps, published_comments(con, con.execute(
                "select current_database()").fetchone()[0]))
            con.execute("update publication set content_fingerprint = ?", [content_fp])
        con.execute("checkpoint")
    finally:
        con.close()
    _replace_durably(tmp, gen)
    return removed


def _publication_interval(published_db: Path) -> tuple[str | None, str | None]:
    import duckdb

    if not published_db.exists():
        return None, None
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        row = con.execute("select data_interval_start, data_interval_end from publication").fetchall()[0]
    finally:
        con.close()
    return (row[0], row[1]) if row else (None, None)


def rebuild_and_republish(sources: list[str], audit_id: str, person_keys: set[str]) -> dict:
    """Steps 5-6: raw tables of `sources`, dbt full refresh, compaction, a new generation, older ones rewritten."""
    from . import buildstate
    from .dbt import kpi_window_vars, run_dbt
    from .loader import load_into_duckdb
    from .publish import _switch, current_generation, generations, publish
    from .tasks import _as_utc

    p = paths()
    out: dict = {}
    if not p.build_db.exists():
        return {"build_db": "absent"}
    load_into_duckdb(p.raw, p.build_db, force=True, sources=sources or None)
    from .analytics import reuse
    from .dbt_select import clear_record
    from .loader import connect_build_db

    con, _ = connect_build_db(p.build_db)
    try:  # raw rows changed without new loads: the next pipeline build is a full one (cxw.dbt_select)
        clear_record(con)
        # and the next analyze refits without the person, also on an as-of date it already computed (CXW_ANALYZE_EVERY)
        reuse.clear(con)
    finally:
        con.close()
    start, end = _publication_interval(p.published_db)
    # the marts are rebuilt with the KPI window of the build BI reads, so nothing but the erasure changes
    # (an explicit CXW_KPI_WINDOW_START / _END wins; the window goes to dbt as --vars, the environment is not modified)
    published = (buildstate.published_build() or {}).get("kpi_window") or [None, None]
    s = settings()
    window = [s.kpi_window_start, s.kpi_window_end]
    for i in (0, 1):
        if window[i] is None and published[i]:
            window[i] = published[i]
    if end and end != "None" and window[1] is None:
        window[1] = _as_utc(end).date().isoformat()
    if s.history_start and window[0] is None:
        window[0] = s.history_start[:10]
    out["kpi_window"] = window
    fp = buildstate.build_fingerprint(window)
    rep = run_dbt(["build", "--full-refresh", "--exclude-resource-type", "unit_test", *kpi_window_vars(window)])
    out["dbt"] = {"returncode": rep["returncode"], "seconds": rep["seconds"],
                  "counts": rep.get("results", {}).get("counts")}
    out["analysis_rows_removed"] = erase_analysis_rows(p.build_db, person_keys)
    compact_duckdb(p.build_db)
    buildstate.record_build(fp["fingerprint"], f"erase-{audit_id}", out["kpi_window"])
    if p.published_db.exists():
        pub = publish(f"erase-{audit_id}", start, end, full=True)  # a fresh file: no freed page keeps the person
        buildstate.record_publication(pub["generation_id"], f"erase-{audit_id}")
        out["published"] = pub["generation_id"]
        from .docs import docs_after_publish

        out["docs"] = docs_after_publish(pub["generation_id"])["status"]
        current = current_generation()
        rewritten = {}
        for g in generations():
            rows = rewrite_generation(g, person_keys) if g.stem != pub["generation_id"] or \
                pub["status"] == "unchanged" else 0
            rewritten[g.stem] = rows
            if g.stem == current:
                _switch(g, p.published_db)  # BI reads the erased file (a hard link to the replaced one is stale)
        out["generations_rewritten"] = rewritten
        from .access import sync

        out["audiences"] = sync(force=True)  # the audience files are derived again from the rewritten generations
    return out


