"""Who is erased and which raw records are theirs (steps 1-2 of `./cx erase`, cxw/erase.py): the identity
graph's e-mail rule over the raw ERP partners and CRM contacts, the records that hang off them, and the
normalisation and hashing shared with the pipeline (the same e-mail / phone / name hashes dbt computes)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .pii import DEMO_SALT
from .settings import settings

ERASED = "[erased]"


def _salt() -> str:
    """CXW_PII_SALT as dbt reads it (macros/pii.sql): the demo salt when unset."""
    salt = settings().pii_salt
    return DEMO_SALT if salt is None else salt


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
    salt = _salt() if salt is None else salt
    return hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()


def subject_hash(kind: str, value: str) -> str:
    """The audit record's subject: salted like the PII hashes but with its own prefix, so it equals no hash the
    warehouse holds; whoever holds the salt can still answer "was this person erased, and when"."""
    salt = _salt()
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
