"""The demo review sites change old reviews (issue 14, item 2): stars edited weeks and months later, replies added or
rewritten later, reviews removed — the files show the version at `as_of`, and the answer key counts exactly that."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo_company import generate
from demo_company.config import DEFAULT_DAYS, DEFAULT_START, SCALES, scaled_dirt
from demo_company.util import US_PER_DAY, us_to_dt
from demo_company.world import build_world

SEED = 4
DIRT = {"review_late_edit_rate": 0.6, "review_deletion_rate": 0.3, "review_late_reply_rate": 0.5}
SECOND = 1_000_000   # as_of is written with whole seconds: "after" an instant is a second later
STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


def _iso(us: int) -> str:
    return us_to_dt(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(out: Path) -> dict:
    tp = {r["review"]["id"]: r["review"] for r in map(json.loads, open(out / "api/trustpilot/reviews.jsonl"))
          if r["review"].get("id")}
    g = {r["review"]["reviewId"]: r["review"] for r in map(json.loads, open(out / "api/google_reviews/reviews.jsonl"))}
    return {"trustpilot": tp, "google": g}


@pytest.fixture(scope="module")
def world():
    return build_world(SEED, SCALES["XS"], DEFAULT_START, DEFAULT_DAYS, scaled_dirt(DIRT))


def _at(tmp: Path, as_of_us: int) -> tuple[dict, dict]:
    out = tmp / _iso(as_of_us)[:10]
    generate(out, scale="XS", seed=SEED, as_of=_iso(as_of_us), dirt=DIRT, workers=1)
    return _files(out), json.loads((out / "answer_key.json").read_text())


def test_files_show_each_review_as_of_their_instant(world, tmp_path):
    tp = next(r for r in world.reviews if r.source == "trustpilot" and r.late_edit_us and not r.quarantine
              and not r.deleted_at(r.late_edit_us + US_PER_DAY) and r.late_edit_us - r.created_us > 100 * US_PER_DAY)
    before, after = _at(tmp_path / "a", tp.late_edit_us - US_PER_DAY)[0], _at(tmp_path / "b", tp.late_edit_us + US_PER_DAY)[0]
    old, new = before["trustpilot"][tp.rid], after["trustpilot"][tp.rid]
    assert old["stars"] != new["stars"] == tp.late_edit_stars
    assert old["createdAt"] == new["createdAt"] and new["updatedAt"] > (old["updatedAt"] or "")

    gone = next(r for r in world.reviews if r.deleted_us and not r.quarantine)
    src = gone.source
    assert gone.rid in _at(tmp_path / "c", gone.deleted_us - 1)[0][src]
    assert gone.rid not in _at(tmp_path / "d", gone.deleted_us + SECOND)[0][src]

    g = next(r for r in world.reviews if r.source == "google" and r.reply_edit_us and not r.quarantine
             and not r.deleted_at(r.reply_edit_us + SECOND))
    old = _at(tmp_path / "e", g.reply_edit_us - 1)[0]["google"][g.rid]
    new = _at(tmp_path / "f", g.reply_edit_us + SECOND)[0]["google"][g.rid]
    assert old["reviewReply"]["comment"] == g.reply_text and new["reviewReply"]["comment"] == g.reply_edit_text
    assert new["reviewReply"]["updateTime"] > old["reviewReply"]["updateTime"]
    assert new["updateTime"] >= new["reviewReply"]["updateTime"] and new["createTime"] == old["createTime"]


def test_answer_key_counts_the_files_latest_versions_and_no_deleted_review(world, tmp_path):
    """At an as_of after many changes: the review KPIs of the key equal a recount from the served files."""
    as_of = world.end_us + 200 * US_PER_DAY
    files, key = _at(tmp_path, as_of)
    changed = [r for r in world.reviews if not r.quarantine and r.late_edit_us and r.late_edit_us <= as_of
               and not r.deleted_at(as_of)]
    deleted = [r for r in world.reviews if r.deleted_at(as_of)]
    assert changed and deleted
    start, end = key["window"]["start"], key["window"]["end"]
    stars = []
    replied = 0
    for r in files["trustpilot"].values():
        if start <= r["createdAt"][:10] < end and r.get("id"):
            stars.append(r["stars"])
            replied += r["companyReply"] is not None
    for r in files["google"].values():
        if r["starRating"] in STARS and start <= r["createTime"][:10] < end:
            stars.append(STARS[r["starRating"]])
            replied += "reviewReply" in r
    window = {k["kpi"]: k for k in key["kpis"] if k["grain"] == "window"}
    assert (window["review_rating_avg"]["numerator"], window["review_rating_avg"]["n"]) == (sum(stars), len(stars))
    assert window["review_reply_rate"]["numerator"] == replied
    served = len(files["trustpilot"]) + len(files["google"])
    e = key["expected"]
    missing_id = e["trustpilot.reviews"]["quarantined"].get("missing_id", 0)
    assert e["trustpilot.reviews"]["records"] + e["google_reviews.reviews"]["records"] == served + missing_id
