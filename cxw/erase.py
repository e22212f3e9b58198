"""Erase one person from every store the pipeline keeps (`./cx erase`, docs/contracts.md section 8), and drop data
older than the retention period (`CXW_RETENTION_DAYS`, `./cx retention`).

Erasure, in this order (each step is safe to repeat: a crash part-way is finished by running erase again):

1. Resolve the person in the raw ERP partners and CRM contacts by the identity graph's rule
   (int_identity_links rule 1): every Odoo partner and HubSpot contact whose normalised e-mail (trim, lower, ß→ss)
   equals one of the person's is the same person, also when that e-mail sits on several partners or contacts; a
   contact whose `odoo_partner_id` is one of the partners, too. Start from an e-mail, a CRM id or an ERP id.
2. Their records: partners, contacts, their sale orders (partner / invoice / shipping partner), order lines and
   pickings, feedback submissions, CRM associations and the tickets and deals associated with the contacts, e-mail
   events sent to them, Trustpilot reviews that reference their orders or carry their e-mail, GA4 events with their
   user_id and the events of browsers (user_pseudo_id) that only they logged in on — and the ids of all of these in
   the id snapshots (`__ids` loads). Any raw row whose text columns contain one of their e-mail addresses goes too.
3. Raw Parquet: each affected part is rewritten without those rows (temp file, fsync, rename, fsync of the
   directory) and its load's `_load.json` updated the same way: file rows and sha256, `rows`, `duplicates_in_load`,
   and an `erasures` entry (audit id, rows removed). The load keeps its id and its files: the loader sees no new
   load, so nothing is loaded twice; erase itself rebuilds the affected raw tables.
4. Dead letters that mention the person (e-mail, phone, name) keep their place and reason but lose payload and url
   (`erased: <audit id>`): the dead-letter counts of the loads stay true.
5. Build database: the two customer-history snapshots lose the person's rows (they are not rebuilt from raw: they
   keep history raw no longer has), the raw tables of the affected sources are rebuilt from the rewritten files,
   `dbt build --full-refresh` rebuilds staging, intermediate models and marts (dbt's tests run), and the database
   file is copied into a fresh file (deleted rows leave no bytes behind in free blocks) that replaces it.
6. A new generation is published from it (BI switches to it), then every other kept generation is rewritten
   without the rows that carry the person's keys (person_sk, e-mail/phone/name hashes, GA4 pseudo ids) into a fresh
   file that replaces it atomically; aggregates (KPI tables) of older generations stay as they were published.
7. Alert exports (jsonl, csv, `_export.json`) lose the person's alerts; the export ledger their alert ids.
   Run artefacts (summaries, validation results, data docs, dbt logs) have every occurrence of the person's e-mail,
   phone, name and hashes replaced by `[erased]`.
8. An audit record is appended to `state/_erasure/audit.jsonl`: a subject hash (salted, but derived differently from
   the pipeline's PII hashes, so it matches nothing in the warehouse), the counts per store and the time. It holds no
   e-mail, phone, name or pipeline hash.

Not erased here: the source systems themselves (the ERP, the CRM, the vendors) — erase there first, or the next
extraction brings the person back; Google reviews by name or person (a display name is no identity evidence: only
the review ids given with --google-review-id are erased); Airflow's own logs and metadata database (they hold counts
and ids, no records — see docs/contracts.md).

Erase holds the warehouse lock exclusively throughout (cxw/warehouse_lock.py): no DAG task runs between its steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .config import paths

log = logging.getLogger(__name__)

ERASED = "[erased]"


def normalize_email(v) -> str | None:
    """The identity graph's e-mail normalisation (dbt_project/macros/pii.sql normalize_email)."""
    if v is None:
        return None
    s = str(v).strip().lower().replace("ß", "ss")
    return s or None


def normalize_phone(v) -> str | None:
    if v is None:
        return None
    s = str(v)
    out = ("+" if s.strip().startswith("+") else "") + re.sub(r"[^0-9]", "", s)
    return out or None


def normalize_name(v) -> str | None:
    if v is None:
        return None
    s = re.sub(r"\s+", " ", str(v)).strip().lower()
    return s or None


def pii_hash(value: str | None, salt: str | None = None) -> str | None:
    """The pipeline's salted hash of a normalised value (macros/pii.sql hash_pii: sha256(salt || '|' || value))."""
    if value is None:
        return None
    salt = os.environ.get("CXW_PII_SALT", "demo-salt-not-secret") if salt is None else salt
    return hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()


def subject_hash(kind: str, value: str) -> str:
    """The audit record's subject: salted like the PII hashes but with its own prefix, so it equals no hash the
    warehouse holds; whoever holds the salt can still answer "was this person erased, and when"."""
    salt = os.environ.get("CXW_PII_SALT", "demo-salt-not-secret")
    return hashlib.sha256(f"cxw-erasure|{salt}|{kind}|{value}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# 1-2. who and which records
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Person:
    emails: set[str] = field(default_factory=set)           # normalised
    raw_emails: set[str] = field(default_factory=set)       # as delivered (stripped)
    phones: set[str] = field(default_factory=set)           # as delivered (stripped)
    names: set[str] = field(default_factory=set)            # full names as delivered (stripped)
    partner_ids: set[int] = field(default_factory=set)
    contact_ids: set[str] = field(default_factory=set)

    def found(self) -> bool:
        return bool(self.partner_ids or self.contact_ids)


def _parts(raw: Path, source: str, entity: str) -> list[str]:
    from .loader import complete_loads

    return [str(f) for ld in complete_loads(raw) if ld.source == source and ld.entity == entity for f in ld.files]


def _read(con, files: list[str], cols: list[str]) -> list[tuple]:
    if not files:
        return []
    have = {r[0] for r in con.execute("describe select * from read_parquet(?, union_by_name = true)",
                                      [files]).fetchall()}
    sel = ", ".join(f'"{c}"' if c in have else f'null as "{c}"' for c in cols)
    return con.execute(f"select {sel} from read_parquet(?, union_by_name = true)", [files]).fetchall()


def resolve(raw: Path, email: str | None = None, crm_id: str | None = None, erp_id: str | int | None = None,
            con=None) -> Person:
    import duckdb

    con = con or duckdb.connect(":memory:")
    person = Person()
    if email:
        person.emails.add(normalize_email(email))
    if crm_id not in (None, ""):
        person.contact_ids.add(str(crm_id))
    if erp_id not in (None, ""):
        person.partner_ids.add(int(erp_id))
    partners = _read(con, _parts(raw, "odoo", "res_partner"), ["id", "email", "phone", "name", "complete_name"])
    contact_files = _parts(raw, "hubspot", "contacts") + _parts(raw, "hubspot", "contacts_archived")
    contacts = _read(con, contact_files, ["id", "properties__email", "properties__phone", "properties__mobilephone",
                                          "properties__firstname", "properties__lastname",
                                          "properties__odoo_partner_id"])
    while True:  # the closure: records sharing an e-mail or an id are one person
        before = (len(person.emails), len(person.partner_ids), len(person.contact_ids))
        for pid, em, ph, nm, cnm in partners:
            if pid is None:
                continue
            if int(pid) in person.partner_ids or (normalize_email(em) and normalize_email(em) in person.emails):
                person.partner_ids.add(int(pid))
                if normalize_email(em):
                    person.emails.add(normalize_email(em))
        for cid, em, ph, mob, fn, ln, opid in contacts:
            if cid is None:
                continue
            linked = str(cid) in person.contact_ids or (normalize_email(em) and normalize_email(em) in person.emails)
            try:
                linked = linked or (opid not in (None, "") and int(float(opid)) in person.partner_ids)
            except ValueError:
                pass
            if linked:
                person.contact_ids.add(str(cid))
                if normalize_email(em):
                    person.emails.add(normalize_email(em))
        if (len(person.emails), len(person.partner_ids), len(person.contact_ids)) == before:
            break
    # the personal values as delivered, of the records found
    for pid, em, ph, nm, cnm in partners:
        if pid is not None and int(pid) in person.partner_ids:
            _add(person.raw_emails, em)
            _add(person.phones, ph)
            _add(person.names, nm)
            _add(person.names, cnm)
    for cid, em, ph, mob, fn, ln, opid in contacts:
        if cid is not None and str(cid) in person.contact_ids:
            _add(person.raw_emails, em)
            _add(person.phones, ph)
            _add(person.phones, mob)
            _add(person.names, " ".join(x.strip() for x in (fn, ln) if x and x.strip()))
    if not person.found():
        person.emails.discard(None)
    return person


def _add(bag: set, v) -> None:
    if v is not None and str(v).strip():
        bag.add(str(v).strip())


@dataclass
class Targets:
    """Per raw (source, entity): {column: set of values}; a row matching any of them is the person's."""
    by_entity: dict[tuple[str, str], dict[str, set]] = field(default_factory=dict)
    sql: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # further row predicates (SQL)

    def add(self, source: str, entity: str, column: str, values) -> None:
        vals = {v for v in values if v is not None and v != ""}
        if vals:
            self.by_entity.setdefault((source, entity), {}).setdefault(column, set()).update(vals)


def records_of(raw: Path, person: Person, con) -> tuple[Targets, dict]:
    """What to remove from raw, and the person's keys for the warehouse (GA4 user / pseudo ids, order names)."""
    t = Targets()
    pids = person.partner_ids
    cids = person.contact_ids
    t.add("odoo", "res_partner", "id", pids)
    orders = _read(con, _parts(raw, "odoo", "sale_order"), ["id", "name", "partner_id", "partner_invoice_id",
                                                             "partner_shipping_id"])
    order_ids = {o[0] for o in orders if o[0] is not None and any(x is not None and int(x) in pids for x in o[2:])}
    order_names = {o[1] for o in orders if o[0] in order_ids and o[1]}
    t.add("odoo", "sale_order", "id", order_ids)
    lines = _read(con, _parts(raw, "odoo", "sale_order_line"), ["id", "order_id"])
    line_ids = {r[0] for r in lines if r[1] in order_ids}
    t.add("odoo", "sale_order_line", "id", line_ids)
    picks = _read(con, _parts(raw, "odoo", "stock_picking"), ["id", "partner_id", "sale_id"])
    pick_ids = {r[0] for r in picks if (r[1] is not None and int(r[1]) in pids) or r[2] in order_ids}
    t.add("odoo", "stock_picking", "id", pick_ids)
    for entity, ids in (("res_partner__ids", pids), ("sale_order__ids", order_ids),
                        ("sale_order_line__ids", line_ids), ("stock_picking__ids", pick_ids)):
        t.add("odoo", entity, "id", ids)

    for entity in ("contacts", "contacts_archived"):
        t.add("hubspot", entity, "id", cids)
    assoc = _read(con, _parts(raw, "hubspot", "associations"), ["from_type", "from_id", "to_type", "to_id"])
    linked: dict[str, set] = {}
    for ft, fid, tt, tid in assoc:
        if _is_contact(ft) and str(fid) in cids:
            linked.setdefault(_kind(tt), set()).add(str(tid))
        if _is_contact(tt) and str(tid) in cids:
            linked.setdefault(_kind(ft), set()).add(str(fid))
    ticket_ids = linked.get("ticket", set())
    deal_ids = linked.get("deal", set())
    for entity in ("tickets", "tickets_archived"):
        t.add("hubspot", entity, "id", ticket_ids)
    for entity in ("deals", "deals_archived"):
        t.add("hubspot", entity, "id", deal_ids)
    # an association with one of their contacts, tickets or deals on either side (ids are unique per object type)
    for side in ("from", "to"):
        for kind, ids in (("contact", cids), ("ticket", ticket_ids), ("deal", deal_ids)):
            if ids:
                t.sql.setdefault(("hubspot", "associations"), []).append(
                    f"(lower({side}_type) in ('{kind}', '{kind}s') and cast({side}_id as varchar) in "
                    f"({', '.join(_sql_lit(str(i)) for i in sorted(ids))}))")
    for entity in ("feedback_submissions", "feedback_submissions_archived"):
        t.add("hubspot", entity, "properties__hs_contact_id", cids)
        t.add("hubspot", entity, "properties__hs_ticket_id", ticket_ids)

    tp = _read(con, _parts(raw, "trustpilot", "reviews"), ["id", "referenceId", "referralEmail"])
    review_ids = {r[0] for r in tp if r[0] and (r[1] in order_names or normalize_email(r[2]) in person.emails)}
    t.add("trustpilot", "reviews", "id", review_ids)
    t.add("trustpilot", "reviews__ids", "id", review_ids)

    # GA4: user_id is the Odoo partner id (identity rule 3); a browser is theirs when only they logged in on it
    ga = _read(con, _parts(raw, "ga4", "events"), ["user_pseudo_id", "user_id"])
    user_ids = {str(p) for p in pids}
    seen: dict[str, set] = {}
    for pseudo, uid in ga:
        if pseudo is not None and uid is not None:
            seen.setdefault(pseudo, set()).add(str(uid))
    pseudo_ids = {p for p, uids in seen.items() if uids & user_ids and uids <= user_ids}
    t.add("ga4", "events", "user_id", user_ids)
    t.add("ga4", "events", "user_pseudo_id", pseudo_ids)
    keys = {"user_ids": user_ids, "pseudo_ids": pseudo_ids, "order_names": order_names,
            "order_ids": order_ids, "review_ids": review_ids}
    return t, keys


def _is_contact(t) -> bool:
    return _kind(t) == "contact"


def _kind(t) -> str:
    s = str(t or "").lower()
    return s[:-1] if s.endswith("s") else s


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


def _sql_lit(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


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
    # pyarrow (≈0.15 s), and every load_<source> task imports this module for drop_old_raw_loads
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
    from .dbt import run_dbt
    from .loader import load_into_duckdb
    from .publish import _switch, current_generation, generations, publish
    from .tasks import _as_utc

    p = paths()
    out: dict = {}
    if not p.build_db.exists():
        return {"build_db": "absent"}
    load_into_duckdb(p.raw, p.build_db, force=True, sources=sources or None)
    start, end = _publication_interval(p.published_db)
    # the marts are rebuilt with the KPI window of the build BI reads, so nothing but the erasure changes
    window = (buildstate.published_build() or {}).get("kpi_window") or [None, None]
    for var, value in (("CXW_KPI_WINDOW_START", window[0]), ("CXW_KPI_WINDOW_END", window[1])):
        if value and var not in os.environ:
            os.environ[var] = value
    if end and end != "None" and "CXW_KPI_WINDOW_END" not in os.environ:
        os.environ["CXW_KPI_WINDOW_END"] = _as_utc(end).date().isoformat()
    if os.environ.get("CXW_HISTORY_START") and "CXW_KPI_WINDOW_START" not in os.environ:
        os.environ["CXW_KPI_WINDOW_START"] = os.environ["CXW_HISTORY_START"][:10]
    out["kpi_window"] = [os.environ.get("CXW_KPI_WINDOW_START"), os.environ.get("CXW_KPI_WINDOW_END")]
    fp = buildstate.build_fingerprint()
    rep = run_dbt(["build", "--full-refresh", "--exclude-resource-type", "unit_test"])
    out["dbt"] = {"returncode": rep["returncode"], "seconds": rep["seconds"],
                  "counts": rep.get("results", {}).get("counts")}
    compact_duckdb(p.build_db)
    buildstate.record_build(fp["fingerprint"], f"erase-{audit_id}", out["kpi_window"])
    if p.published_db.exists():
        pub = publish(f"erase-{audit_id}", start, end)
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


# ---------------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------------

def _residue(norm_email: str | None) -> bool:
    """Whether a kept generation still holds the person of this e-mail (by its hash / person id) — what an erase
    that stopped after rewriting raw leaves behind."""
    import duckdb

    from .publish import generations

    if not norm_email:
        return False
    h = pii_hash(norm_email)
    for g in generations():
        con = duckdb.connect(str(g), read_only=True)
        try:
            if con.execute("select count(*) from core.dim_customers where person_sk = ? or email_hash = ?",
                           ["p_" + h[:20], h]).fetchall()[0][0]:
                return True
        except duckdb.Error:
            continue
        finally:
            con.close()
    return False


def audit_file() -> Path:
    return paths().state / "_erasure" / "audit.jsonl"


def postgres_refusal(target: str) -> str:
    """What erase says on a non-DuckDB build target: that nothing changed, why, and the exact steps instead."""
    where = "PostgreSQL database {db} on {host}:{port} (schema {schema} and its siblings)".format(
        db=os.environ.get("CXW_PG_DBNAME", "cx_warehouse"), host=os.environ.get("CXW_PG_HOST", "127.0.0.1"),
        port=os.environ.get("CXW_PG_PORT", "5432"), schema=os.environ.get("CXW_PG_SCHEMA", "public"))
    return "\n".join([
        f"erase refused, nothing was changed: CXW_DBT_TARGET={target!r}.",
        "erase rebuilds the warehouse itself only on the DuckDB build target; with this target the raw tables,",
        f"staging, snapshots and marts live in the {where}, and erasing the raw files alone would",
        "leave the person there (an erasure is all stores or none).",
        "Do instead, while no DAG run is active (pause the DAG) - docs/contracts.md section 8, 'Erase on PostgreSQL':",
        "  1) CXW_DBT_TARGET=duckdb ./cx erase <the same option>",
        "     raw files, dead letters, alert drops, run artefacts and the audit record;",
        "  2) CXW_DBT_TARGET=postgres ./cx python -c 'from cxw.config import paths; from cxw.loader import "
        "load_into_postgres, pg_dsn; load_into_postgres(paths().raw, pg_dsn(), force=True)'",
        "     the raw tables rebuilt from the erased files;",
        "  3) in PostgreSQL, the snapshots (they keep history raw no longer has):",
        "     delete from intermediate.snap_odoo__res_partners where email_hash = H or partner_id in (<their ERP ids>);",
        "     delete from intermediate.snap_hubspot__contacts where email_hash = H or contact_id in (<their CRM ids>);",
        "     H for each of their e-mail addresses: ./cx python -c \"from cxw.erase import pii_hash, normalize_email; "
        "print(pii_hash(normalize_email('ADDRESS')))\"",
        "  4) CXW_DBT_TARGET=postgres .venv/bin/dbt build --full-refresh --target postgres --project-dir dbt_project "
        "--profiles-dir dbt_project",
        "     staging, intermediate models and marts rebuilt without them.",
    ])


def erase(email: str | None = None, crm_id: str | None = None, erp_id: str | None = None,
          rebuild: bool = True, google_review_ids: list[str] | None = None) -> dict:

    from .config import dbt_target

    google_review_ids = sorted({str(g).strip() for g in google_review_ids or [] if str(g).strip()})
    if not (email or crm_id or erp_id or google_review_ids):
        raise ValueError("erase needs --email, --crm-id or --erp-id (and/or --google-review-id)")
    if dbt_target() != "duckdb":  # checked before anything changes: an erasure is all stores or none
        raise ValueError(postgres_refusal(dbt_target()))
    from .warehouse_lock import erasure

    # no pipeline task runs while erase does (each waits for the other up to CXW_BUILD_DB_LOCK_WAIT_S): a load, a
    # build or a publish between two of erase's steps could bring back rows it removed (cxw/warehouse_lock.py)
    with erasure() as lock_wait:
        return _erase(email, crm_id, erp_id, rebuild, lock_wait, google_review_ids)


def google_reviews_present(raw: Path, review_ids: list[str], con) -> set[str]:
    """Which of these Google review ids (`reviewId`, the last part of the review's resource name) raw holds."""
    wanted = set(review_ids)
    rows = _read(con, _parts(raw, "google_reviews", "reviews"), ["reviewId", "name"])
    return {str(r[0]) for r in rows if r[0] is not None and (str(r[0]) in wanted
                                                               or str(r[1] or "").rsplit("/", 1)[-1] in wanted)}


def _erase(email, crm_id, erp_id, rebuild: bool, lock_wait: float, google_review_ids: list[str]) -> dict:
    import duckdb

    p = paths()
    t0 = time.perf_counter()
    at = datetime.now(timezone.utc)
    kind, value = (("email", normalize_email(email)) if email else ("crm_id", str(crm_id)) if crm_id
                   else ("erp_id", str(int(erp_id))) if erp_id not in (None, "")
                   else ("google_review_id", ",".join(google_review_ids)))
    subject = subject_hash(kind, value)
    audit_id = f"{at:%Y%m%dT%H%M%S}-{subject[:8]}"
    con = duckdb.connect(":memory:")
    con.execute("set threads = 1")  # the keep-mask must come back in the part's row order
    try:
        by_person = bool(email or crm_id or erp_id not in (None, ""))
        person = resolve(p.raw, email, crm_id, erp_id, con) if by_person else Person()
        # Google reviews carry no identifier of their author: only the review ids the requester names are matched
        gids = google_reviews_present(p.raw, google_review_ids, con) if google_review_ids else set()
        if google_review_ids and not gids:
            raise LookupError(f"erase: none of the {len(google_review_ids)} given Google review id(s) is in "
                              f"{p.raw} (nothing erased)")
        if by_person and not person.found():
            if kind != "email" or not _residue(normalize_email(email)):
                raise LookupError(f"erase: no ERP partner or CRM contact matches the given {kind} in {p.raw} "
                                  "(nothing erased)")
            # raw no longer has them (an erase that stopped part-way): finish the stores keyed by the e-mail hash
            person.emails.add(normalize_email(email))
        targets, keys = records_of(p.raw, person, con)
        targets.add("google_reviews", "reviews", "reviewId", gids)
        targets.add("google_reviews", "reviews__ids", "reviewId", gids)
        # the marts' keys of these reviews: review_id / source_record_id, review_key and text ids, touchpoint keys
        google_keys = gids | {f"google:{g}" for g in gids} | {f"review:google_reviews:{g}" for g in gids}
        email_hashes, hashes, person_ids = warehouse_keys(p.build_db, person, keys)
        if not person.found():
            person_ids |= {"p_" + h[:20] for h in email_hashes}
        person_keys = email_hashes | person_ids | keys["pseudo_ids"] | google_keys
        words = needles(person, email_hashes | hashes, person_ids | keys["pseudo_ids"] | google_keys)
        counts: dict = {"partners": len(person.partner_ids), "contacts": len(person.contact_ids)}
        if gids:
            counts["google_reviews"] = len(gids)
        counts["raw_rows"] = erase_raw(p.raw, targets, person, audit_id, con)
    finally:
        con.close()
    counts["dead_letters"] = erase_dead_letters(p.deadletter, words, audit_id)
    counts["snapshot_rows"] = erase_snapshots(p.build_db, person, email_hashes)
    sources = sorted({k.split(".")[0] for k in counts["raw_rows"]})
    if rebuild:  # after an erase that stopped part-way (nothing left in raw): every source's tables
        counts["warehouse"] = rebuild_and_republish(sources if person.found() or gids else [], audit_id,
                                                    person_keys)
    from .alerts import alerts_root

    counts["alerts"] = erase_alert_exports(alerts_root(), person_ids, words)
    counts["text_files_redacted"] = (redact_text_files(p.runs, words) + redact_text_files(p.home / "dbt", words)
                                     + redact_text_files(p.state, words, skip=(audit_file().parent,)))
    record = {"audit_id": audit_id, "erased_at": at.isoformat(), "subject": f"{kind}:{subject}",
              "counts": counts, "seconds": round(time.perf_counter() - t0, 2), "lock_wait_s": lock_wait}
    af = audit_file()
    af.parent.mkdir(parents=True, exist_ok=True)
    with af.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("erased one person (audit %s): %s", audit_id, counts)
    return record


# ---------------------------------------------------------------------------------------------------------------
# retention
# ---------------------------------------------------------------------------------------------------------------

def retention_days() -> int | None:
    """CXW_RETENTION_DAYS: unset, empty or 0 = keep everything (the default)."""
    v = os.environ.get("CXW_RETENTION_DAYS", "").strip()
    if not v:
        return None
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"CXW_RETENTION_DAYS={v!r}: expected a whole number of days") from None
    if n < 0:
        raise ValueError(f"CXW_RETENTION_DAYS={v!r}: must not be negative")
    return n or None


def _utc(v) -> datetime | None:
    try:
        d = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


_KEYS = ("id", "reviewId")


def _superseded(con, ld, newer: list) -> bool:
    """Nothing in load `ld` is still current: every row has a newer delivery in `newer` (same key — `id` /
    `reviewId` —, or the same content for an entity without one). An `__ids` load is a full id snapshot: any newer
    snapshot supersedes it. A GA4 load is the export of its day: its events are the data, never re-delivered."""
    if ld.entity.endswith("__ids") or (ld.source, ld.entity) == ("ga4", "events") or not ld.files:
        return True
    new_files = [str(f) for n in newer for f in n.files]
    if not new_files:
        return False
    old = [str(f) for f in ld.files]
    cols = [r[0] for r in con.execute("describe select * from read_parquet(?, union_by_name = true)",
                                      [old]).fetchall()]
    new_cols = {r[0] for r in con.execute("describe select * from read_parquet(?, union_by_name = true)",
                                          [new_files]).fetchall()}
    key = next((k for k in _KEYS if k in cols and k in new_cols), None)
    if key:
        match = [key]
    else:
        match = [c for c in cols if not c.startswith("_")]
        if not match or not set(match) <= new_cols:
            return False
    on = " and ".join(f'o."{c}" is not distinct from n."{c}"' for c in match)
    left = con.execute(f"select count(*) from read_parquet(?, union_by_name = true) as o where not exists "
                       f"(select 1 from read_parquet(?, union_by_name = true) as n where {on})",
                       [old, new_files]).fetchall()[0][0]
    return left == 0


def drop_old_raw_loads(days: int | None = None, now: datetime | None = None,
                       sources: list[str] | None = None) -> list[str]:
    """Drop the raw loads extracted more than `days` days ago (`_load.json` extracted_at: the load time, not the
    data's date) whose content is no longer current (`_superseded`): a record the sources have not changed since
    keeps its load, whatever its age, because staging and the marts are rebuilt from raw; the newest load of a
    (source, entity) always stays. Each load goes with one rename out of sight, then its files. The loader sees the
    loads missing and rebuilds those raw tables from what is left; their rows in `_cxw.raw_loads` go here."""
    import duckdb

    from .loader import complete_loads, connect_writer

    days = retention_days() if days is None else days
    if not days:
        return []
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    p = paths()
    loads = [ld for ld in complete_loads(p.raw) if sources is None or ld.source in sources]
    groups: dict[tuple[str, str], list] = {}
    for ld in loads:
        groups.setdefault((ld.source, ld.entity), []).append(ld)
    dropped = []
    con = duckdb.connect(":memory:")
    try:
        for (source, entity), group in sorted(groups.items()):
            group.sort(key=lambda x: x.load_id)
            for i, ld in enumerate(group[:-1]):
                when = _utc(ld.meta.get("extracted_at"))
                if when is None or when >= cutoff or not _superseded(con, ld, group[i + 1:]):
                    continue
                gone = ld.path.with_name(f".tmp-retention-{ld.load_id}")
                os.rename(ld.path, gone)  # atomic: readers see the whole load or none of it
                shutil.rmtree(gone)
                dropped.append(f"{source}/{entity}/{ld.load_id}")
    finally:
        con.close()
    if dropped and p.build_db.exists():
        from .config import dbt_target

        if dbt_target() == "duckdb":
            wcon, _ = connect_writer(p.build_db)
            try:
                if wcon.execute("select count(*) from information_schema.tables where table_schema = '_cxw' "
                                "and table_name = 'raw_loads'").fetchall()[0][0]:
                    wcon.execute("delete from _cxw.raw_loads where list_contains(?, load_id)",
                                 [[d.split("/")[2] for d in dropped]])
            finally:
                wcon.close()
    if dropped:
        log.info("retention %d days: dropped %d raw loads extracted before %s", days, len(dropped),
                 cutoff.isoformat())
    return dropped


def generation_time(stem: str) -> datetime | None:
    """When a generation was published: its id starts with the UTC publication time (`cxw.publish`)."""
    try:
        return datetime.strptime(stem.split("-")[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def drop_old_generations(days: int | None = None, now: datetime | None = None) -> list[str]:
    """Drop kept generations published more than `days` days ago, never the one BI reads."""
    from .publish import current_generation, generations

    days = retention_days() if days is None else days
    if not days:
        return []
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    cur = current_generation()
    dropped = []
    for g in generations():
        when = generation_time(g.stem)
        if when is None or when >= cutoff or g.stem == cur:
            continue
        g.unlink()
        Path(str(g) + ".wal").unlink(missing_ok=True)
        dropped.append(g.stem)
    if dropped:
        log.info("retention %d days: dropped generations %s", days, dropped)
        from .access import sync

        sync()  # the audience files of the dropped generations go too
    return dropped


def apply_retention(days: int | None = None, now: datetime | None = None) -> dict:
    """`./cx retention`: both drops now (the DAG applies them in load_<source> and publish), holding the warehouse
    lock exclusively (cxw/warehouse_lock.py): no load, build or publish runs while loads and generations go, and no
    erasure; waits up to CXW_BUILD_DB_LOCK_WAIT_S, then WarehouseBusy with nothing dropped."""
    from .warehouse_lock import maintenance

    days = retention_days() if days is None else days
    with maintenance("retention"):
        return {"retention_days": days, "raw_loads_dropped": drop_old_raw_loads(days, now),
                "generations_dropped": drop_old_generations(days, now)}
