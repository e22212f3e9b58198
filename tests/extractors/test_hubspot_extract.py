"""HubSpot extractor against the loopback DemoServer (real HTTP, fake clock)."""
from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone

import pytest

from conftest import (HISTORY_START, WINDOW_END, FakeClock, all_text_under, fingerprint, http_cfg, read_load,
                      run_kwargs, visible_loads)
from demo_company.server import DemoServer
from extractors import hubspot
from extractors.common.http import CursorLoopError, ExtractorHTTPError, InvalidPayloadError, RateLimitedError
from extractors.hubspot.helpers import iso_to_ms

UTC = timezone.utc
SEARCH = "/crm/v3/objects/contacts/search"


def settings(srv, clock, **kw):
    base = dict(token=srv.manifest["hubspot"]["token"], base_url=srv.base_url, history_start=HISTORY_START,
                http=http_cfg(clock))
    base.update(kw)
    return hubspot.HubspotSettings(**base)


def contacts_only(srv, clock, **kw):
    return settings(srv, clock, objects=["contacts"], association_pairs=[], include_email_events=False, **kw)


def jsonl(demo_dir, name):
    with open(demo_dir / "api" / "hubspot" / f"{name}.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_of(report, entity):
    [row] = [l for l in report["loads"] if l["entity"] == entity]
    return row


def test_full_history_matches_store(server, clock, dirs, demo_dir):
    rep = hubspot.extract(settings=settings(server, clock), **run_kwargs(dirs))
    counts = server.manifest["counts"]
    for obj in ("contacts", "companies", "deals", "tickets", "feedback_submissions", "email_events",
                "associations"):
        assert load_of(rep, obj)["rows"] == counts[f"api/hubspot/{obj}.jsonl"], obj
    rows, meta = read_load(load_of(rep, "feedback_submissions")["path"])
    assert meta["rows"] == len(rows) and meta["files"][0]["sha256"]
    # properties stay strings, flattened with "__"; bad values land verbatim
    assert all(isinstance(r["properties__hs_value"], (str, type(None))) for r in rows)
    raw_values = {r["properties"].get("hs_value") for r in jsonl(demo_dir, "feedback_submissions")}
    assert {r["properties__hs_value"] for r in rows} == raw_values
    ev, _ = read_load(load_of(rep, "email_events")["path"])
    assert isinstance(ev[0]["sentBy"], str) and json.loads(ev[0]["sentBy"])["id"]  # nested -> JSON text
    assoc, _ = read_load(load_of(rep, "associations")["path"])
    assert set(assoc[0]) == {"from_type", "from_id", "to_type", "to_id", "type_id", "label", "category"}
    assert {(a["from_type"], a["to_type"]) for a in assoc} >= {("tickets", "contacts"), ("deals", "contacts"),
                                                             ("deals", "companies"), ("contacts", "companies")}
    state = json.loads((dirs["state"] / "hubspot.json").read_text())
    assert state["entities"]["contacts"]["cursor"] == "2025-07-01T00:00:00.000000Z"


def test_incremental_second_run_lands_only_changed(server, clock, dirs, demo_dir):
    mid = datetime(2025, 4, 1, tzinfo=UTC)
    s = contacts_only(server, clock)
    r1 = hubspot.extract(settings=s, **run_kwargs(dirs, end=mid))
    r2 = hubspot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    l1, l2 = load_of(r1, "contacts"), load_of(r2, "contacts")
    assert l2["cursor_before"] == l1["cursor_after"] == "2025-04-01T00:00:00.000000Z"
    lo = iso_to_ms("2025-04-01T00:00:00Z") - 10 * 60 * 1000  # cursor - lookback
    hi = iso_to_ms("2025-07-01T00:00:00Z")
    store = jsonl(demo_dir, "contacts")
    expected = [c for c in store if (t := iso_to_ms(c["properties"]["lastmodifieddate"])) is not None and lo <= t < hi]
    assert l2["rows"] == len(expected) < len(store)
    ids1 = {r["id"] for r in read_load(l1["path"])[0]}
    ids2 = {r["id"] for r in read_load(l2["path"])[0]}
    assert ids2 == {c["id"] for c in expected}
    assert ids1 | ids2 == {c["id"] for c in store if iso_to_ms(c["properties"]["lastmodifieddate"]) is not None}


def test_window_mode_backfill_is_exact_and_idempotent(server, clock, dirs, demo_dir):
    s = contacts_only(server, clock)
    hubspot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))  # establishes the cursor
    cursor = json.loads((dirs["state"] / "hubspot.json").read_text())["entities"]["contacts"]["cursor"]
    ws, we = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC)
    a = load_of(hubspot.extract(settings=s, **run_kwargs(dirs, ws, we, mode="window")), "contacts")
    b = load_of(hubspot.extract(settings=s, **run_kwargs(dirs, ws, we, mode="window")), "contacts")
    expected = [c for c in jsonl(demo_dir, "contacts")
                if (t := iso_to_ms(c["properties"]["lastmodifieddate"])) is not None
                and iso_to_ms("2025-03-01T00:00:00Z") <= t < iso_to_ms("2025-03-08T00:00:00Z")]
    assert a["rows"] == len(expected) > 0
    assert a["load_id"] != b["load_id"]
    assert fingerprint(read_load(a["path"])[0]) == fingerprint(read_load(b["path"])[0])
    # backfill never moves the cursor
    assert json.loads((dirs["state"] / "hubspot.json").read_text())["entities"]["contacts"]["cursor"] == cursor


def test_429_retry_after_seconds_and_http_date(server, clock, dirs):
    server.inject_faults(SEARCH, [{"status": 429, "retry_after": "7"},
                                  {"status": 429, "retry_after_http_date": True, "seconds": 5}])
    rep = hubspot.extract(settings=contacts_only(server, clock), **run_kwargs(dirs))
    assert 7.0 in clock.sleeps
    assert any(4.0 <= s <= 5.0 for s in clock.sleeps)  # HTTP-date has 1 s resolution
    row = load_of(rep, "contacts")
    assert row["rows"] == 287 and row["duplicates_in_load"] == 0


def test_5xx_then_success_backs_off(server, clock, dirs):
    server.inject_faults(SEARCH, [{"status": 503}, {"status": 502}])
    rep = hubspot.extract(settings=contacts_only(server, clock), **run_kwargs(dirs))
    assert load_of(rep, "contacts")["rows"] == 287
    backoffs = [s for s in clock.sleeps]
    assert len(backoffs) >= 2 and all(0 < s <= 4.0 for s in backoffs[:2])
    statuses = [e["status"] for e in server.request_log() if e["path"] == SEARCH]
    assert statuses[:3] == [503, 502, 200]


def test_connection_reset_mid_page_is_retried(server, clock, dirs):
    server.inject_faults(SEARCH, [{"delay": 0}, {"reset": True}])
    rep = hubspot.extract(settings=contacts_only(server, clock, page_size=100), **run_kwargs(dirs))
    row = load_of(rep, "contacts")
    assert row["rows"] == 287 and row["duplicates_in_load"] == 0 and len(clock.sleeps) >= 1


def test_5xx_forever_fails_bounded(server, clock, dirs):
    server.inject_faults(SEARCH, [{"status": 500}] * 10)
    with pytest.raises(ExtractorHTTPError, match="HTTP 500"):
        hubspot.extract(settings=contacts_only(server, clock), **run_kwargs(dirs))
    assert len([e for e in server.request_log() if e["path"] == SEARCH]) == 4  # max_attempts
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []
    assert not (dirs["state"] / "hubspot.json").exists()


def test_401_not_retried_and_token_never_shown(server, clock, dirs, caplog):
    bad_token = "pat-wrong-SECRET-0123456789"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExtractorHTTPError) as ei:
        hubspot.extract(settings=contacts_only(server, clock, token=bad_token), **run_kwargs(dirs))
    msg = str(ei.value)
    assert "hubspot" in msg and SEARCH in msg and "401" in msg
    assert bad_token not in msg and bad_token not in caplog.text
    assert len([e for e in server.request_log() if e["path"] == SEARCH]) == 1
    assert clock.sleeps == []
    assert bad_token not in all_text_under(dirs["raw"], dirs["state"], dirs["deadletter"])
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []


def test_retry_after_above_cap_fails_fast(server, clock, dirs):
    server.inject_faults(SEARCH, [{"status": 429, "retry_after": "3600"}])
    with pytest.raises(RateLimitedError, match="rate limited"):
        hubspot.extract(settings=contacts_only(server, clock), **run_kwargs(dirs))
    assert clock.sleeps == []
    assert len([e for e in server.request_log() if e["path"] == SEARCH]) == 1


def test_cursor_loop_detected(server, clock, dirs):
    server.inject_faults(SEARCH, [{"delay": 0}, {"repeat_cursor": True}])
    with pytest.raises(CursorLoopError):
        hubspot.extract(settings=contacts_only(server, clock, page_size=50), **run_kwargs(dirs))
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []
    assert not (dirs["state"] / "hubspot.json").exists()


def test_truncated_json_goes_to_dead_letter_and_fails_load(server, clock, dirs):
    token = server.manifest["hubspot"]["token"]
    server.inject_faults(SEARCH, [{"delay": 0}, {"truncate": True}])
    with pytest.raises(InvalidPayloadError, match="dead letter"):
        hubspot.extract(settings=contacts_only(server, clock, page_size=100), **run_kwargs(dirs))
    [dl_dir] = list((dirs["deadletter"] / "hubspot").iterdir())
    letter = json.loads((dl_dir / "0.json").read_text())
    assert letter["status"] == 200 and letter["method"] == "POST" and SEARCH in letter["url"]
    assert "not valid JSON" in letter["reason"] or "invalid JSON" in letter["reason"]
    assert letter["payload"].startswith('{"total"')
    assert token not in json.dumps(letter)
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []   # no gap silently landed
    assert not (dirs["state"] / "hubspot.json").exists()


def test_search_cap_windowing_over_10k_records_at_few_timestamps(demo_dir, tmp_path, dirs):
    data = tmp_path / "big"
    (data / "api" / "hubspot").mkdir(parents=True)
    shutil.copy(demo_dir / "manifest.json", data / "manifest.json")
    stamps = ["2025-02-01T10:00:00.000Z"] * 10_300 + ["2025-02-02T10:00:00.000Z"] * 150 + \
             ["2025-02-03T10:00:00.000Z"] * 50
    with open(data / "api" / "hubspot" / "contacts.jsonl", "w") as fh:
        for i, ts in enumerate(stamps):
            rid = str(500_000 + (i * 7919) % len(stamps))  # ids not in timestamp order
            fh.write(json.dumps({"id": rid, "properties": {"email": f"u{rid}@example.com", "lastmodifieddate": ts,
                                 "createdate": ts, "hs_object_id": rid},
                                 "createdAt": ts, "updatedAt": ts, "archived": False}) + "\n")
    clock = FakeClock()
    with DemoServer(data, port=0, clock=clock, realism=False,
                    limits={"hubspot_search_per_s": 10_000, "hubspot_per_10s": 100_000}) as srv:
        rep = hubspot.extract(settings=contacts_only(srv, clock), **run_kwargs(dirs))
        statuses = [e["status"] for e in srv.request_log()]
    row = load_of(rep, "contacts")
    rows, meta = read_load(row["path"])
    assert row["rows"] == 10_500 and len({r["id"] for r in rows}) == 10_500
    assert row["duplicates_in_load"] == 0
    assert meta["search_cap_restarts"] >= 1
    assert 400 not in statuses


def test_archived_records_landed_as_snapshot(demo_dir, tmp_path, dirs):
    """The search API never returns archived records: GET /crm/v3/objects/{obj}?archived=true lands them as
    <obj>_archived (the demo store has none, so a copy gets three archived contacts and one archived deal)."""
    store = tmp_path / "store"
    shutil.copytree(demo_dir, store, ignore=shutil.ignore_patterns("ga4", "odoo"))
    archived = {}
    for obj, n in (("contacts", 3), ("deals", 1)):
        recs = jsonl(store, obj)
        for r in recs[:n]:
            r["archived"], r["archivedAt"] = True, "2025-06-20T10:00:00.000Z"
        archived[obj] = {r["id"] for r in recs[:n]}
        with open(store / "api" / "hubspot" / f"{obj}.jsonl", "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in recs)
    clock = FakeClock()
    with DemoServer(store, port=0, clock=clock, realism=False) as srv:
        s = settings(srv, clock, objects=["contacts", "deals"], association_pairs=[], include_email_events=False,
                     list_page_size=2)  # 2 per page: the 3 archived contacts take two pages
        rep = hubspot.extract(settings=s, **run_kwargs(dirs))
        gets = [r for r in srv.request_log() if r["path"] == "/crm/v3/objects/contacts"]
        # a backfill does not list archived records
        rw = hubspot.extract(settings=s, **run_kwargs(dirs, datetime(2025, 6, 1, tzinfo=UTC), WINDOW_END,
                                                      mode="window"))
    by = {l["entity"]: l for l in rep["loads"]}
    rows, meta = read_load(by["contacts_archived"]["path"])
    assert {r["id"] for r in rows} == archived["contacts"] and len(rows) == 3
    assert all(r["archived"] is True and r["archivedAt"] == "2025-06-20T10:00:00.000Z" for r in rows)
    assert "properties__email" in rows[0] and meta["snapshot_of"] == "contacts"
    assert {r["id"] for r in read_load(by["deals_archived"]["path"])[0]} == archived["deals"]
    # archived records never come back from search, so the normal load lacks them
    assert not archived["contacts"] & {r["id"] for r in read_load(by["contacts"]["path"])[0]}
    assert len(gets) == 2 and all("archived=true" in g["query"] for g in gets)
    assert not [l for l in rw["loads"] if l["entity"].endswith("_archived")]


def test_client_rate_limiter_prevents_429_storms(demo_dir, dirs, tmp_path):
    """With the default client-side limits (90/10 s, search 4/s) no request is answered 429 by a server enforcing
    HubSpot's 100/10 s and 5 search/s; without them the same run gets 429s (then honours Retry-After)."""
    counts = {}
    for name, limits in (("default", None), ("off", [])):
        clock = FakeClock()
        with DemoServer(demo_dir, port=0, clock=clock, realism=False) as srv:
            kw = {} if limits is None else {"rate_limits": limits}
            s = settings(srv, clock, **kw)
            rep = hubspot.extract(settings=s, **run_kwargs({k: tmp_path / name / k for k in dirs}))
            log = srv.request_log()
        counts[name] = sum(1 for e in log if e["status"] == 429)
        assert load_of(rep, "contacts")["rows"] == srv.manifest["counts"]["api/hubspot/contacts.jsonl"]
        if name == "default":
            assert [l.name for l in s.rate_limits] == ["hubspot:rate_limit=90/10s", "hubspot:search_rate_limit=4/1s"]
            searches = sorted(e["at"] for e in log if e["path"].endswith("/search"))
            assert all(sum(1 for t in searches if a <= t < a + 1) <= 5 for a in searches)
            everything = sorted(e["at"] for e in log)
            assert all(sum(1 for t in everything if a <= t < a + 10) <= 100 for a in everything)
    assert counts["default"] == 0 and counts["off"] > 0
