"""Google Business Profile and Trustpilot extractors against the loopback DemoServer."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from conftest import (HISTORY_START, WINDOW_END, FakeClock, all_text_under, fingerprint, http_cfg, read_load,
                      run_kwargs, visible_loads)
from demo_company.server import DemoServer
from extractors import google_reviews, trustpilot
from extractors.common.http import CursorLoopError, ExtractorHTTPError, InvalidPayloadError
from extractors.common.settings import parse_utc

UTC = timezone.utc


def g_settings(srv, clock, **kw):
    g = srv.manifest["google"]
    base = dict(token=g["token"], account_id=g["account_id"], location_ids=g["location_ids"],
                base_url=srv.base_url, history_start=HISTORY_START, http=http_cfg(clock))
    base.update(kw)
    return google_reviews.GoogleReviewsSettings(**base)


def t_settings(srv, clock, **kw):
    t = srv.manifest["trustpilot"]
    base = dict(api_key=t["api_key"], api_secret=t["api_secret"], business_unit_ids=t["business_unit_ids"],
                base_url=srv.base_url, history_start=HISTORY_START, http=http_cfg(clock))
    base.update(kw)
    return trustpilot.TrustpilotSettings(**base)


def reviews_load(rep):
    """The run's load of review records (a full re-read also lands the reviews__ids snapshot)."""
    [load] = [ld for ld in rep["loads"] if ld["entity"] == "reviews"]
    return load


def store(demo_dir, vendor):
    with open(demo_dir / "api" / vendor / "reviews.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --------------------------------------------------------------------------------------------- Google
def test_google_full_flatten_and_location(server, clock, dirs, demo_dir):
    rep = google_reviews.extract(settings=g_settings(server, clock, page_size=3), **run_kwargs(dirs))
    load = reviews_load(rep)
    assert load["rows"] == len(store(demo_dir, "google_reviews")) == server.manifest["counts"][
        "api/google_reviews/reviews.jsonl"]
    rows, meta = read_load(load["path"])
    assert {"reviewer__displayName", "reviewReply__comment", "starRating", "_location_name"} <= set(rows[0])
    assert {r["_location_name"] for r in rows} <= {f"accounts/{server.manifest['google']['account_id']}/locations/{l}"
                                                   for l in server.manifest["google"]["location_ids"]}
    assert meta["rows"] == load["rows"] and meta["cursor_after"] == "2025-07-01T00:00:00.000000Z"


def test_google_incremental_stops_paging_early(server, clock, dirs, demo_dir):
    s = g_settings(server, clock, page_size=2)
    google_reviews.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    full_requests = len(server.request_log())
    server.reset()
    rep = google_reviews.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(days=1)))
    load = reviews_load(rep)
    lo = WINDOW_END - timedelta(days=3)
    expected = [r for r in store(demo_dir, "google_reviews") if parse_utc(r["review"]["updateTime"]) >= lo]
    assert load["rows"] == len(expected)
    assert len(server.request_log()) < full_requests


def test_google_401_and_429(server, clock, dirs):
    prefix = "/v4/accounts/"
    server.inject_faults(prefix, [{"status": 429, "retry_after": "3"}])
    rep = google_reviews.extract(settings=g_settings(server, clock), **run_kwargs(dirs))
    assert 3.0 in clock.sleeps and rep["loads"][0]["rows"] > 0
    bad = "ya29.WRONG-token-abcdef"
    with pytest.raises(ExtractorHTTPError, match="401") as ei:
        google_reviews.extract(settings=g_settings(server, clock, token=bad), **run_kwargs(dirs))
    assert "google_reviews" in str(ei.value) and bad not in str(ei.value)


def test_google_cursor_loop(server, clock, dirs):
    server.inject_faults("/v4/accounts/", [{"repeat_cursor": True}, {"repeat_cursor": True}])
    with pytest.raises(CursorLoopError):
        google_reviews.extract(settings=g_settings(server, clock, page_size=2), **run_kwargs(dirs))
    assert visible_loads(dirs["raw"], "google_reviews", "reviews") == []


# --------------------------------------------------------------------------------------------- Trustpilot
def test_trustpilot_full_links_stripped_and_flattened(server, clock, dirs, demo_dir):
    rep = trustpilot.extract(settings=t_settings(server, clock, per_page=5), **run_kwargs(dirs))
    load = reviews_load(rep)
    assert load["rows"] == len(store(demo_dir, "trustpilot"))
    rows, _ = read_load(load["path"])
    assert not any(k == "links" or k.startswith("links") for r in rows for k in r)
    assert {"consumer__displayName", "businessUnit__id", "companyReply__text", "tags", "stars"} <= set(rows[0])
    assert all(r["tags"] is None or isinstance(json.loads(r["tags"]), list) for r in rows)
    # reviews lacking the primary key land verbatim (staging quarantines them) and do not crash the load
    missing = [s for s in store(demo_dir, "trustpilot") if not s["review"].get("id")]
    assert len([r for r in rows if not r.get("id")]) == len(missing)
    secrets = [server.manifest["trustpilot"]["api_key"], server.manifest["trustpilot"]["api_secret"]]
    text = all_text_under(dirs["raw"], dirs["state"], dirs["deadletter"])
    assert not any(s in text for s in secrets)


def test_trustpilot_incremental_rereads_trailing_90_days(server, clock, dirs, demo_dir):
    s = t_settings(server, clock)
    trustpilot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    rep = trustpilot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(hours=1)))
    [load] = rep["loads"]  # no full re-read an hour after the first run's
    lo = WINDOW_END - timedelta(days=90)
    expected = [r for r in store(demo_dir, "trustpilot") if lo <= parse_utc(r["review"]["createdAt"]) < WINDOW_END]
    assert load["rows"] == len(expected) > 0
    assert load["cursor_after"] == "2025-07-01T01:00:00.000000Z"


def test_trustpilot_duplicates_kept_and_counted(demo_dir, dirs):
    clock = FakeClock()
    with DemoServer(demo_dir, port=0, clock=clock, realism=True) as srv:
        rep = trustpilot.extract(settings=t_settings(srv, clock, per_page=2), **run_kwargs(dirs))
    load = reviews_load(rep)
    rows, _ = read_load(load["path"])
    ids = [r["id"] for r in rows if r.get("id")]
    assert load["duplicates_in_load"] == len(ids) - len(set(ids)) > 0


def test_trustpilot_window_idempotent(server, clock, dirs):
    s = t_settings(server, clock)
    ws, we = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    [a] = trustpilot.extract(settings=s, mode="window", **{k: v for k, v in run_kwargs(dirs, ws, we).items()
                                                          if k != "mode"})["loads"]
    [b] = trustpilot.extract(settings=s, mode="window", **{k: v for k, v in run_kwargs(dirs, ws, we).items()
                                                          if k != "mode"})["loads"]
    assert a["rows"] > 0 and fingerprint(read_load(a["path"])[0]) == fingerprint(read_load(b["path"])[0])
    state = json.loads((dirs["state"] / "trustpilot.json").read_text())
    assert state["entities"]["reviews"]["cursor"] is None  # a backfill never sets / moves the cursor


def test_trustpilot_token_5xx_then_ok_and_truncated_page(server, clock, dirs):
    server.inject_faults("/v1/oauth/", [{"status": 503}])
    server.inject_faults("/v1/private/", [{"truncate": True}])
    with pytest.raises(InvalidPayloadError):
        trustpilot.extract(settings=t_settings(server, clock), **run_kwargs(dirs))
    assert len(clock.sleeps) == 1  # one backoff for the 503 token call
    [dl] = list((dirs["deadletter"] / "trustpilot").iterdir())
    letter = json.loads((dl / "0.json").read_text())
    assert letter["status"] == 200 and "/v1/private/business-units/" in letter["url"]
    text = json.dumps(letter)
    assert server.manifest["trustpilot"]["api_secret"] not in text
    assert visible_loads(dirs["raw"], "trustpilot", "reviews") == []


def test_trustpilot_bad_credentials_401(server, clock, dirs, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExtractorHTTPError, match="401") as ei:
        trustpilot.extract(settings=t_settings(server, clock, api_secret="tps-WRONG-secret-xyz"), **run_kwargs(dirs))
    assert "tps-WRONG-secret-xyz" not in str(ei.value) and "tps-WRONG-secret-xyz" not in caplog.text
    assert "/v1/oauth/oauth-business-users-for-applications/accesstoken" in str(ei.value)


def test_trustpilot_cursor_loop(server, clock, dirs):
    server.inject_faults("/v1/private/", [{"repeat_cursor": True}, {"repeat_cursor": True}])
    with pytest.raises(CursorLoopError):
        trustpilot.extract(settings=t_settings(server, clock, per_page=2), **run_kwargs(dirs))


# ------------------------------------------------------------------------------------ full re-reads (issue 14)
def test_trustpilot_full_reread_lists_the_whole_unit_every_7_days_never_on_a_rerun(server, clock, dirs, demo_dir):
    s = t_settings(server, clock, history_start=datetime(2025, 3, 1, tzinfo=UTC))
    listed = {r["review"]["id"] for r in store(demo_dir, "trustpilot") if r["review"].get("id")}
    rep = trustpilot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews", "reviews__ids"]
    rows, _ = read_load(rep["loads"][0]["path"])
    assert rows and all(parse_utc(r["createdAt"]) >= datetime(2025, 3, 1, tzinfo=UTC) for r in rows)
    ids, meta = read_load(rep["loads"][1]["path"])
    # every review the unit holds, also those created before the history start (not loaded, but not deleted)
    assert {r["id"] for r in ids} == listed and len(ids) == len(listed)
    assert len(rows) < len(store(demo_dir, "trustpilot")) and meta["snapshot_of"] == "reviews"
    assert all("startDateTime" not in e["query"] for e in server.request_log() if "/reviews" in e["path"])
    server.reset()
    # a re-run of the same interval and the next 6 days: the rolling window only, never the whole unit again
    for days in (0, 1, 6):
        rep = trustpilot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(days=days)))
        assert [ld["entity"] for ld in rep["loads"]] == ["reviews"]
    assert all("startDateTime" in e["query"] for e in server.request_log() if "/reviews" in e["path"])
    rep = trustpilot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(days=7)))
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews", "reviews__ids"]
    # a backfill never reconciles
    rep = trustpilot.extract(settings=s, mode="window", **{k: v for k, v in run_kwargs(
        dirs, WINDOW_END - timedelta(days=30), WINDOW_END + timedelta(days=30)).items() if k != "mode"})
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews"]


def test_google_full_reread_lists_reviews_updated_before_the_history_start_on_later_pages(server, clock, dirs,
                                                                                          demo_dir):
    """A full re-read pages every location to its end: the list is ordered `updateTime desc`, so reviews updated
    before the history start come on the last pages. They are not loaded, but the `reviews__ids` snapshot must name
    every review the location holds (an incremental run's early stop at the first older page would drop them)."""
    held = store(demo_dir, "google_reviews")
    stamps = sorted(parse_utc(r["review"]["updateTime"]) for r in held)
    start = stamps[len(stamps) // 2]  # half the reviews were last updated before this history start
    rep = google_reviews.extract(settings=g_settings(server, clock, page_size=2, history_start=start),
                                 **run_kwargs(dirs, start=start))
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews", "reviews__ids"]
    ids, _ = read_load(rep["loads"][1]["path"])
    assert sorted(r["reviewId"] for r in ids) == sorted(r["review"]["reviewId"] for r in held)
    rows, _ = read_load(rep["loads"][0]["path"])
    assert sorted(r["reviewId"] for r in rows) == sorted(
        r["review"]["reviewId"] for r in held if parse_utc(r["review"]["updateTime"]) >= start)


def test_google_full_reread_pages_every_location_to_the_end(server, clock, dirs, demo_dir):
    s = g_settings(server, clock, page_size=2)
    google_reviews.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    server.reset()
    rep = google_reviews.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(days=1)))
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews"]
    early_stop = len(server.request_log())
    server.reset()
    rep = google_reviews.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END + timedelta(days=7)))
    assert [ld["entity"] for ld in rep["loads"]] == ["reviews", "reviews__ids"]
    assert len(server.request_log()) > early_stop
    ids, _ = read_load(rep["loads"][1]["path"])
    assert sorted(r["reviewId"] for r in ids) == sorted(r["review"]["reviewId"] for r in store(demo_dir, "google_reviews"))
    rows, _ = read_load(rep["loads"][0]["path"])
    assert len(rows) == len(ids)  # the latest version of every review (all updated after the history start)
