"""Erase one person from every store the pipeline keeps (`./cx erase`, docs/contracts.md section 8): who they are
and which records are theirs (here), and the command that rewrites each store in turn (cxw/erase_stores.py). Data
older than the retention period (`CXW_RETENTION_DAYS`, `./cx retention`) is dropped by cxw/retention.py.

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
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
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


def _sql_lit(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _is_contact(t) -> bool:
    return _kind(t) == "contact"


def _kind(t) -> str:
    s = str(t or "").lower()
    return s[:-1] if s.endswith("s") else s


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

    from .erase_stores import (erase_alert_exports, erase_dead_letters, erase_raw, erase_snapshots, needles,
                               rebuild_and_republish, redact_text_files, warehouse_keys)

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
