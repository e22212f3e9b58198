"""Erase one person from every store the pipeline keeps (`./cx erase`, docs/contracts.md section 8). This is the
command: who they are and which records are theirs come from cxw/erase_person.py, each store is rewritten by
cxw/erase_stores.py, in turn, under the warehouse lock. Data older than the retention period (`CXW_RETENTION_DAYS`,
`./cx retention`) is dropped by cxw/retention.py.

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

import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from .config import paths
from .settings import settings
from .erase_person import Person, _parts, _read, normalize_email, pii_hash, records_of, resolve, subject_hash
from .erase_stores import (erase_alert_exports, erase_dead_letters, erase_raw, erase_snapshots, needles,
                           rebuild_and_republish, redact_text_files, warehouse_keys)

log = logging.getLogger(__name__)

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
    s = settings()
    where = "PostgreSQL database {db} on {host}:{port} (schema {schema} and its siblings)".format(
        db=s.pg_dbname, host=s.pg_host, port=s.pg_port, schema=s.pg_schema)
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
