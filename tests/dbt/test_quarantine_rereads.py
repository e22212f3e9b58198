"""The quarantine holds each distinct bad record once, whatever the extractors re-read (a rolling Trustpilot window,
full re-reads, HubSpot deltas), and the load ledger still balances: a re-read copy of a bad record is a duplicate.

On the hand-made raw fixture (tests/dbt/raw_fixture.py; L1/L2 already hold a Trustpilot review without id and three
bad HubSpot feedback submissions 500031-500033), real dbt builds the staging layer, then later loads land:
- L3 re-reads Trustpilot (t1, t2 and the review without id, every vendor field unchanged) and HubSpot feedback
  (500031 unchanged with its score 11; 500032 fixed at the vendor: score 'five' became '5');
- L4 re-reads the review without id after it was edited (stars, updatedAt, a company reply) and brings a second,
  different review without id, and two different HubSpot feedback submissions with an empty id.
Rules (macros/staging_helpers.sql quarantine_rows): a keyed record counts once, as the latest delivery of its key,
and leaves the quarantine when that delivery is good; a keyless record is identified by its content (Trustpilot:
business unit, consumer, createdAt - fields a vendor does not edit).
"""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import _dbt, _env  # noqa: E402

STAGING = ["run", "--select", "staging"]
L3 = "20250325T000000-cccccccc"
L4 = "20250401T000000-eeeeeeee"


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _reread(db: Path, table: str, src: str, load: str, where: str, changes: str = "") -> None:
    """Land a re-read of the rows `where` of `table` as load `<src>-<load>` (changes: `col = expr, ...` replacing
    columns), record sequence numbers continuing after the rows already in that load."""
    con = duckdb.connect(str(db))
    try:
        lid = f"{src}-{load}"
        cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        repl = dict(c.split("=", 1) for c in changes.split(";") if c.strip())
        repl = {k.strip(): v.strip() for k, v in repl.items()}
        first = con.execute(f"select count(*) from {table} where _load_id = ?", [lid]).fetchone()[0]
        sel = []
        for c in cols:
            if c == "_load_id":
                sel.append(f"'{lid}'")
            elif c == "_extracted_at":
                sel.append(f"timestamp '{load[:4]}-{load[4:6]}-{load[6:8]}'")
            elif c == "_record_seq":
                sel.append(f"{first} + row_number() over (order by _load_id, _record_seq) - 1")
            else:
                sel.append(repl.get(c, f'"{c}"'))
        con.execute(f"insert into {table} select {', '.join(sel)} from {table} where {where} "
                    f"and _load_id not like '%{load}'")
    finally:
        con.close()


def _ledger(db: Path, source: str, entity: str) -> dict[str, tuple]:
    rows = _rows(db, "select load_id, extracted, staged, quarantined, duplicates from staging.load_ledger "
                     f"where source = '{source}' and entity = '{entity}'")
    return {lid.split("-", 1)[1]: tuple(r) for lid, *r in rows}


def _balanced(db: Path) -> None:
    bad = _rows(db, "select * from staging.load_ledger "
                    "where extracted <> staged + quarantined + duplicates or duplicates < 0 or quarantined < 0")
    assert not bad


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quarantine_rereads")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    env = _env(tmp, db)
    _dbt(env, *STAGING)
    assert _rows(db, "select count(*) from staging.quarantine where source = 'trustpilot'") == [(1,)]
    # L3: Trustpilot re-read (t1, t2, the review without id - unchanged), HubSpot 500031 unchanged, 500032 fixed
    _reread(db, "raw_trustpilot.reviews", "trustpilot", L3, "true")
    _reread(db, "raw_hubspot.feedback_submissions", "hubspot", L3, "id = '500031'")
    _reread(db, "raw_hubspot.feedback_submissions", "hubspot", L3, "id = '500032'",
            "properties__hs_value = '5'; updatedAt = '2025-03-21T00:00:00.000Z'")
    # Odoo S00002 re-read after its amount_total became text '327,80 EUR' at the source: the extractor lands it NULL
    # and names it (the loader adds the two columns the first time a load carries them)
    con = duckdb.connect(str(db))
    try:
        con.execute("alter table raw_odoo.sale_order add column _type_error_fields varchar")
        con.execute("alter table raw_odoo.sale_order add column _type_error_values varchar")
    finally:
        con.close()
    _reread(db, "raw_odoo.sale_order", "odoo", L3, "id = 2",
            "amount_total = NULL; write_date = '2025-03-24 10:00:00'; _type_error_fields = 'amount_total'; "
            "_type_error_values = '{\"amount_total\": \"327,80 EUR\"}'")
    # HubSpot deal 300001 re-read with a locale-formatted amount: quarantined, not staged with a NULL amount
    _reread(db, "raw_hubspot.deals", "hubspot", L3, "id = '300001'",
            "properties__amount = '1.500,00'; updatedAt = '2025-03-24T00:00:00Z'")
    _dbt(env, *STAGING)
    return db, env


def test_a_keyless_bad_record_reread_unchanged_is_one_quarantine_row_and_a_duplicate_in_the_ledger(built):
    db, _ = built
    # one quarantine row (its latest delivery); the L1 copy is a duplicate
    tp = _rows(db, "select record_id, reason, load_id from staging.quarantine where source = 'trustpilot'")
    assert tp == [(None, "missing_id", f"trustpilot-{L3}")]
    assert _ledger(db, "trustpilot", "reviews") == {
        "20250310T000000-aaaaaaaa": (3, 0, 0, 3),   # all three re-read by L3
        L3: (3, 2, 1, 0),
    }
    _balanced(db)


def test_a_keyed_bad_record_reread_unchanged_is_one_row_and_once_fixed_it_is_staged_and_leaves_the_quarantine(built):
    db, _ = built
    # 500031 re-read unchanged: one row (L3); 500032 fixed: staged, its earlier bad delivery a superseded version;
    # 500033 (not re-read) stays
    fb = _rows(db, "select record_id, reason, load_id from staging.quarantine "
                   "where entity = 'feedback_submissions' order by record_id")
    assert fb == [("500031", "score_out_of_range", f"hubspot-{L3}"),
                  ("500033", "bad_timestamp", "hubspot-20250320T000000-bbbbbbbb")]
    assert _rows(db, "select score from staging.stg_hubspot__feedback_submissions where feedback_id = '500032'") \
        == [(5,)]
    led = _ledger(db, "hubspot", "feedback_submissions")
    assert led["20250320T000000-bbbbbbbb"] == (4, 1, 1, 2)   # 500005 staged, 500033; 500031/500032 superseded by L3
    assert led[L3] == (2, 1, 1, 0)
    _balanced(db)


def test_a_keyless_record_edited_later_is_still_one_record_and_a_new_one_is_another(built):
    db, env = built
    # L4: the review without id edited (stars, updatedAt, a reply), and a second review without id (consumer c4)
    _reread(db, "raw_trustpilot.reviews", "trustpilot", L4, f"id is null and _load_id like '%{L3}'",
            "stars = 4; updatedAt = '2025-03-30T00:00:00Z'; companyReply__text = 'Thanks'; "
            "companyReply__createdAt = '2025-03-30T01:00:00Z'")
    _reread(db, "raw_trustpilot.reviews", "trustpilot", L4, f"id is null and _load_id like '%{L3}'",
            "consumer__id = 'c4'; text = 'Another one'")
    # ... and two different HubSpot feedback submissions that arrive without id ('' - keyless, not one key '')
    _reread(db, "raw_hubspot.feedback_submissions", "hubspot", L4, f"id = '500031' and _load_id like '%{L3}'", "id = ''")
    _reread(db, "raw_hubspot.feedback_submissions", "hubspot", L4, f"id = '500031' and _load_id like '%{L3}'",
            "id = ''; properties__hs_contact_id = '100002'")
    _dbt(env, *STAGING)
    assert _rows(db, "select reason, load_id, record_seq from staging.quarantine "
                     "where entity = 'feedback_submissions' and reason = 'missing_id' order by record_seq") \
        == [("missing_id", f"hubspot-{L4}", 0), ("missing_id", f"hubspot-{L4}", 1)]
    tp = _rows(db, "select record_id, reason, load_id, record_seq from staging.quarantine "
                   "where source = 'trustpilot' order by record_seq")
    assert tp == [(None, "missing_id", f"trustpilot-{L4}", 0), (None, "missing_id", f"trustpilot-{L4}", 1)]
    led = _ledger(db, "trustpilot", "reviews")
    assert led[L3] == (3, 2, 0, 1)
    assert led[L4] == (2, 0, 2, 0)
    _balanced(db)


def test_a_value_that_did_not_parse_is_quarantined_with_source_record_and_field_named(built):
    """Type drift (issue 15.2): the extractor landed S00002's amount_total NULL with _type_error_fields; staging
    quarantines that delivery with the field named (source, entity and record id are the quarantine row's) instead of
    staging an order without revenue; the order's last good version stays staged; the ledger balances."""
    db, env = built
    q = _rows(db, "select source, entity, record_id, reason, load_id from staging.quarantine where source = 'odoo' "
                 "and entity = 'sale_order'")
    assert q == [("odoo", "sale_order", "2", "unparsable_value: amount_total", f"odoo-{L3}")]
    assert _rows(db, "select amount_total, _load_id from staging.stg_odoo__sale_orders where order_id = 2") \
        == [(242.0, "odoo-20250310T000000-aaaaaaaa")]
    assert _ledger(db, "odoo", "sale_order")[L3] == (1, 0, 1, 0)
    _balanced(db)
    _dbt(env, "test", "--select", "quarantine,test_type:generic")   # its reason test accepts the named reason


def test_a_vendor_amount_that_does_not_parse_in_full_is_quarantined_not_staged_as_null(built):
    """HubSpot lands properties as text: a deal amount '1.500,00' used to be staged with amount NULL (try_cast);
    now that delivery is quarantined with the field named, and the deal's last good version stays staged."""
    db, _ = built
    assert _rows(db, "select record_id, reason, load_id from staging.quarantine where entity = 'deals'") \
        == [("300001", "unparsable_value: amount", f"hubspot-{L3}")]
    assert _rows(db, "select amount from staging.stg_hubspot__deals where deal_id = '300001'") == [(1500.0,)]
    _balanced(db)
