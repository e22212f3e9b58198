"""Real public reviews served through the demo's Trustpilot API (issue 14: real text, real dates, real ratings).

`amazon_alexa_tsv_to_trustpilot` converts the Kaggle "Amazon Alexa Reviews" TSV (shared/data/amazon_alexa_reviews:
3,150 rows, UTF-8 with BOM, columns rating, date (d-Mon-yy), variation, verified_reviews, feedback) into the
records of `api/trustpilot/reviews.jsonl` (docs/contracts.md §3): ``{"business_unit_id", "review": <private
Review>}``. `replace_trustpilot_reviews` writes them over a generated company's file, so the demo server serves them.

Mapping (deterministic, the same file gives byte-identical records):
  id           24 hex digits of sha1("amazon-alexa:<row number>") - stable per row (row 1 = first data row)
  stars        rating
  createdAt    the row's date at 08:00:00Z plus <row number> seconds (distinct instants, always the same UTC day)
  updatedAt    = createdAt (never edited)
  title        variation;  text = verified_reviews verbatim (emoji, HTML-ish text, empty text all kept)
  consumer     synthetic: id from sha1("amazon-alexa-consumer:<row>"), displayName "Alexa reviewer <row>"
  language     "en"; status "active"; source "Organic"; isVerified false; no referenceId, no company reply
The TSV's `feedback` column (1/0, derived from the rating upstream) is not carried: Trustpilot has no such field.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                      "Dec"), start=1)}


def read_alexa_tsv(path: str | os.PathLike) -> list[dict]:
    """The TSV's rows as dicts (BOM stripped, standard TSV quoting: a quoted field's quotes are not text)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def parse_alexa_date(value: str) -> dt.date:
    """`31-Jul-18` -> 2018-07-31."""
    d, mon, yy = value.strip().split("-")
    return dt.date(2000 + int(yy), MONTHS[mon], int(d))


def _hex24(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:24]


def alexa_review_id(row_number: int) -> str:
    return _hex24(f"amazon-alexa:{row_number}")


def amazon_alexa_tsv_to_trustpilot(path: str | os.PathLike, business_unit: dict) -> list[dict]:
    """``business_unit``: ``{"id", "identifyingName", "displayName"}`` of the Trustpilot business unit to serve
    them under. Returns the reviews.jsonl records in file order."""
    out = []
    for n, row in enumerate(read_alexa_tsv(path), start=1):
        day = parse_alexa_date(row["date"])
        created = (dt.datetime(day.year, day.month, day.day, 8, tzinfo=dt.timezone.utc)
                   + dt.timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rid = alexa_review_id(n)
        review = {
            "links": [{"href": f"https://api.trustpilot.com/v1/reviews/{rid}", "method": "GET", "rel": "reviews"}],
            "id": rid,
            "consumer": {"id": _hex24(f"amazon-alexa-consumer:{n}"), "displayName": f"Alexa reviewer {n}",
                         "displayLocation": None, "numberOfReviews": 1},
            "businessUnit": dict(business_unit),
            "stars": int(row["rating"]), "title": row["variation"], "text": row["verified_reviews"],
            "language": "en", "createdAt": created, "updatedAt": created, "experiencedAt": None,
            "referenceId": None, "isVerified": False, "source": "Organic", "status": "active",
            "numberOfLikes": 0, "companyReply": None,
        }
        out.append({"business_unit_id": business_unit["id"], "review": review})
    return out


def replace_trustpilot_reviews(data_dir: str | os.PathLike, tsv: str | os.PathLike) -> int:
    """Serve the TSV's reviews instead of the generated ones: overwrite ``api/trustpilot/reviews.jsonl`` of a
    generated company (first business unit of its manifest). The company's answer key no longer describes
    Trustpilot afterwards; a test computes what is right from the TSV. Returns the number of reviews written."""
    data_dir = Path(data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    bu_id = manifest["trustpilot"]["business_unit_ids"][0]
    unit = {"id": bu_id, "identifyingName": manifest.get("domain", "hidden-cafe.example.com"),
            "displayName": manifest.get("company", "Hidden Cafe")}
    records = amazon_alexa_tsv_to_trustpilot(tsv, unit)
    target = data_dir / "api" / "trustpilot" / "reviews.jsonl"
    tmp = target.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, target)
    return len(records)


__all__ = ["read_alexa_tsv", "parse_alexa_date", "alexa_review_id", "amazon_alexa_tsv_to_trustpilot",
           "replace_trustpilot_reviews"]
