"""HubSpot extractor against the loopback DemoServer (real HTTP, fake clock)."""
from __future__ import annotations

import json
import logging
import math
import shutil
from datetime import datetime, timezone

import pytest

from conftest import (HISTORY_START, WINDOW_END, FakeClock, all_text_under, fingerprint, http_cfg, read_load,
                      run_kwargs, visible_loads)
from demo_company.server import DemoServer
from extractors import hubspot
from extractors.common.http import CursorLoopError, ExtractorHTTPError, InvalidPayloadError, RateLimitedError
from extractors.common.settings import ConfigError
from extractors.hubspot.helpers import iso_to_ms
from extractors.hubspot.settings import CURSOR_PROPERTY

UTC = timezone.utc
SEARCH = "/crm/v3/objects/contacts/search"
LIST = "/crm/v3/objects/contacts"
OBJECTS = ("contacts", "companies", "deals", "tickets", "feedback_submissions")
# how a first run of contacts reads: the list endpoint (default) or search (CXW_HUBSPOT_HISTORY_VIA=search)
READ = {"list": (LIST, "GET"), "search": (SEARCH, "POST")}
VIA = pytest.mark.parametrize("via", ["list", "search"])


def settings(srv, clock, **kw):
    base = dict(token=srv.manifest["hubspot"]["token"], base_url=srv.base_url, history_start=HISTORY_START,
                http=http_cfg(clock))
    base.update(kw)
    return hubspot.HubspotSettings(**base)


def contacts_only(srv, clock, **kw):
    return settings(srv, clock, objects=["contacts"], association_pairs=[], include_email_events=False, **kw)


def contacts_via(srv, clock, via, page=None, **kw):
    """contacts only, first run read through ``via``; ``page`` = that path's page size."""
    if page is not None:
        kw["list_page_size" if via == "list" else "page_size"] = page
    return contacts_only(srv, clock, history_via_list=via == "list", **kw)


def inject(srv, via, faults):
    path, method = READ[via]
    srv.inject_faults(path, faults, method=method)


def reads(log, via, obj="contacts"):
    """Requests of the first-run read of ``obj`` (list GETs without archived=true, or searches)."""
    if via == "list":
        return [e for e in log if e["method"] == "GET" and e["path"] == f"/crm/v3/objects/{obj}"
                and "archived=true" not in e["query"]]
    return [e for e in log if e["method"] == "POST" and e["path"] == f"/crm/v3/objects/{obj}/search"]


def cursor_ms(rec, obj="contacts"):
    return iso_to_ms(rec["properties"].get(CURSOR_PROPERTY[obj]))


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


@VIA
def test_429_retry_after_seconds_and_http_date(server, clock, dirs, via):
    inject(server, via, [{"status": 429, "retry_after": "7"},
                         {"status": 429, "retry_after_http_date": True, "seconds": 5}])
    rep = hubspot.extract(settings=contacts_via(server, clock, via), **run_kwargs(dirs))
    assert 7.0 in clock.sleeps
    assert any(4.0 <= s <= 5.0 for s in clock.sleeps)  # HTTP-date has 1 s resolution
    row = load_of(rep, "contacts")
    assert row["rows"] == 287 and row["duplicates_in_load"] == 0
    assert read_load(row["path"])[1]["read_via"] == via
    assert [e["status"] for e in reads(server.request_log(), via)][:3] == [429, 429, 200]


@VIA
def test_5xx_then_success_backs_off(server, clock, dirs, via):
    inject(server, via, [{"status": 503}, {"status": 502}])
    rep = hubspot.extract(settings=contacts_via(server, clock, via), **run_kwargs(dirs))
    assert load_of(rep, "contacts")["rows"] == 287
    backoffs = [s for s in clock.sleeps]
    assert len(backoffs) >= 2 and all(0 < s <= 4.0 for s in backoffs[:2])
    statuses = [e["status"] for e in reads(server.request_log(), via)]
    assert statuses[:3] == [503, 502, 200]


@VIA
def test_connection_reset_mid_page_is_retried(server, clock, dirs, via):
    inject(server, via, [{"delay": 0}, {"reset": True}])
    rep = hubspot.extract(settings=contacts_via(server, clock, via, page=100), **run_kwargs(dirs))
    row = load_of(rep, "contacts")
    assert row["rows"] == 287 and row["duplicates_in_load"] == 0 and len(clock.sleeps) >= 1


@VIA
def test_5xx_forever_fails_bounded(server, clock, dirs, via):
    inject(server, via, [{"status": 500}] * 10)
    with pytest.raises(ExtractorHTTPError, match="HTTP 500"):
        hubspot.extract(settings=contacts_via(server, clock, via), **run_kwargs(dirs))
    assert len(reads(server.request_log(), via)) == 4  # max_attempts
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []
    assert not (dirs["state"] / "hubspot.json").exists()


@VIA
def test_401_not_retried_and_token_never_shown(server, clock, dirs, caplog, via):
    bad_token = "pat-wrong-SECRET-0123456789"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExtractorHTTPError) as ei:
        hubspot.extract(settings=contacts_via(server, clock, via, token=bad_token), **run_kwargs(dirs))
    msg = str(ei.value)
    assert "hubspot" in msg and READ[via][0] in msg and "401" in msg
    assert bad_token not in msg and bad_token not in caplog.text
    assert len(reads(server.request_log(), via)) == 1 == len(server.request_log())
    assert clock.sleeps == []
    assert bad_token not in all_text_under(dirs["raw"], dirs["state"], dirs["deadletter"])
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []


@VIA
def test_retry_after_above_cap_fails_fast(server, clock, dirs, via):
    inject(server, via, [{"status": 429, "retry_after": "3600"}])
    with pytest.raises(RateLimitedError, match="rate limited"):
        hubspot.extract(settings=contacts_via(server, clock, via), **run_kwargs(dirs))
    assert clock.sleeps == []
    assert len(reads(server.request_log(), via)) == 1


@VIA
def test_cursor_loop_detected(server, clock, dirs, via):
    inject(server, via, [{"delay": 0}, {"repeat_cursor": True}])
    with pytest.raises(CursorLoopError):
        hubspot.extract(settings=contacts_via(server, clock, via, page=50), **run_kwargs(dirs))
    assert visible_loads(dirs["raw"], "hubspot", "contacts") == []
    assert not (dirs["state"] / "hubspot.json").exists()


@VIA
def test_truncated_json_goes_to_dead_letter_and_fails_load(server, clock, dirs, via):
    token = server.manifest["hubspot"]["token"]
    inject(server, via, [{"delay": 0}, {"truncate": True}])
    with pytest.raises(InvalidPayloadError, match="dead letter"):
        hubspot.extract(settings=contacts_via(server, clock, via, page=100), **run_kwargs(dirs))
    [dl_dir] = list((dirs["deadletter"] / "hubspot").iterdir())
    letter = json.loads((dl_dir / "0.json").read_text())
    path, method = READ[via]
    assert letter["status"] == 200 and letter["method"] == method and path in letter["url"]
    assert "not valid JSON" in letter["reason"] or "invalid JSON" in letter["reason"]
    assert letter["payload"].startswith('{"total"' if via == "search" else '{"results"')
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
        # the cap is a search limit: read this first run through search (a list has no cap)
        rep = hubspot.extract(settings=contacts_only(srv, clock, history_via_list=False), **run_kwargs(dirs))
        statuses = [e["status"] for e in srv.request_log()]
    row = load_of(rep, "contacts")
    rows, meta = read_load(row["path"])
    assert row["rows"] == 10_500 and len({r["id"] for r in rows}) == 10_500
    assert row["duplicates_in_load"] == 0
    assert meta["search_cap_restarts"] >= 1 and meta["read_via"] == "search"
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
        gets = [r for r in srv.request_log() if r["path"] == "/crm/v3/objects/contacts"
                and "archived=true" in r["query"]]
        # a backfill does not list archived records
        rw = hubspot.extract(settings=s, **run_kwargs(dirs, datetime(2025, 6, 1, tzinfo=UTC), WINDOW_END,
                                                      mode="window"))
    by = {l["entity"]: l for l in rep["loads"]}
    rows, meta = read_load(by["contacts_archived"]["path"])
    assert {r["id"] for r in rows} == archived["contacts"] and len(rows) == 3
    assert all(r["archived"] is True and r["archivedAt"] == "2025-06-20T10:00:00.000Z" for r in rows)
    assert "properties__email" in rows[0] and meta["snapshot_of"] == "contacts"
    assert {r["id"] for r in read_load(by["deals_archived"]["path"])[0]} == archived["deals"]
    # archived records never come back from search or the (non-archived) list, so the normal load lacks them
    assert read_load(by["contacts"]["path"])[1]["read_via"] == "list"
    assert not archived["contacts"] & {r["id"] for r in read_load(by["contacts"]["path"])[0]}
    assert not archived["deals"] & {r["id"] for r in read_load(by["deals"]["path"])[0]}
    assert len(gets) == 2
    assert not [l for l in rw["loads"] if l["entity"].endswith("_archived")]


@VIA
def test_client_rate_limiter_prevents_429_storms(demo_dir, dirs, tmp_path, via):
    """With the default client-side limits (90/10 s, search 4/s) no request is answered 429 by a server enforcing
    HubSpot's 100/10 s (Free/Starter) and 5 search/s; without them the same run gets 429s (then honours
    Retry-After). search: the first run searches (5/s binds); list: the first run lists 3 records per page
    (> 100 requests in a burst, the general limit binds)."""
    counts = {}
    for name, limits in (("default", None), ("off", [])):
        clock = FakeClock()
        with DemoServer(demo_dir, port=0, clock=clock, realism=False, limits={"hubspot_per_10s": 100}) as srv:
            kw = {} if limits is None else {"rate_limits": limits}
            if via == "list":
                kw["list_page_size"] = 3
            s = settings(srv, clock, history_via_list=via == "list", **kw)
            rep = hubspot.extract(settings=s, **run_kwargs({k: tmp_path / name / k for k in dirs}))
            log = srv.request_log()
        counts[name] = sum(1 for e in log if e["status"] == 429)
        assert reads(log, via)
        assert load_of(rep, "contacts")["rows"] == srv.manifest["counts"]["api/hubspot/contacts.jsonl"]
        if name == "default":
            assert [l.name for l in s.rate_limits] == ["hubspot:rate_limit=90/10s", "hubspot:search_rate_limit=4/1s"]
            searches = sorted(e["at"] for e in log if e["path"].endswith("/search"))
            assert all(sum(1 for t in searches if a <= t < a + 1) <= 5 for a in searches)
            everything = sorted(e["at"] for e in log)
            assert all(sum(1 for t in everything if a <= t < a + 10) <= 100 for a in everything)
    assert counts["default"] == 0 and counts["off"] > 0


# ---- first run through the list endpoint ---------------------------------------------------------------------
def crm_only(srv, clock, **kw):
    return settings(srv, clock, association_pairs=[], include_email_events=False, archived_objects=[], **kw)


def by_id(rows):
    return sorted(rows, key=lambda r: (len(str(r["id"])), str(r["id"])))


def test_first_run_via_list_lands_same_records_as_search(server, clock, tmp_path, demo_dir):
    """All five objects: the first run lists (GET, 100 per page, no search request) and lands exactly the rows a
    first run through search lands (ids and every property value)."""
    landed, logs = {}, {}
    for via in ("list", "search"):
        before = len(server.request_log())
        d = {k: tmp_path / via / k for k in ("raw", "state", "deadletter")}
        rep = hubspot.extract(settings=crm_only(server, clock, history_via_list=via == "list"), **run_kwargs(d))
        logs[via] = server.request_log()[before:]
        landed[via] = {obj: read_load(load_of(rep, obj)["path"]) for obj in OBJECTS}
    assert not [e for e in logs["list"] if e["path"].endswith("/search")]
    assert not [e for e in logs["search"] if e["method"] == "GET"]
    for obj in OBJECTS:
        (rows_l, meta_l), (rows_s, meta_s) = landed["list"][obj], landed["search"][obj]
        store = jsonl(demo_dir, obj)
        assert len(rows_l) == len(store) > 0, obj
        assert by_id(rows_l) == by_id(rows_s), obj
        assert fingerprint(rows_l) == fingerprint(rows_s)
        assert meta_l["read_via"] == "list" and meta_s["read_via"] == "search"
        assert meta_l["search_requests"] == 0 and meta_l["list_repeats"] == 0
        listed = reads(logs["list"], "list", obj)
        assert meta_l["list_requests"] == len(listed) <= math.ceil(len(store) / 100) + meta_l["list_repeats"]
        assert all("limit=100" in e["query"] for e in listed)
        assert meta_l["duplicates_in_load"] == 0
        assert meta_s["search_requests"] == len(reads(logs["search"], "search", obj)) > 0
        # same cursor either way: the window end
        assert meta_l["cursor_after"] == meta_s["cursor_after"] == "2025-07-01T00:00:00.000000Z"


def test_first_run_via_list_stops_at_window_end_and_next_run_searches(server, clock, dirs, demo_dir):
    """A record modified at/after the first run's window end is left to the next (incremental) run, which
    searches; list run ∪ delta run = the store."""
    mid = datetime(2025, 4, 1, tzinfo=UTC)
    s = contacts_only(server, clock)
    r1 = hubspot.extract(settings=s, **run_kwargs(dirs, end=mid))
    n1 = len(server.request_log())
    r2 = hubspot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    log2 = server.request_log()[n1:]
    (rows1, meta1), (rows2, meta2) = read_load(load_of(r1, "contacts")["path"]), \
        read_load(load_of(r2, "contacts")["path"])
    store = jsonl(demo_dir, "contacts")
    mid_ms = iso_to_ms("2025-04-01T00:00:00Z")
    before_mid = {c["id"] for c in store if cursor_ms(c) < mid_ms}
    later = {c["id"] for c in store if cursor_ms(c) >= mid_ms}
    assert before_mid and later
    ids1, ids2 = {r["id"] for r in rows1}, {r["id"] for r in rows2}
    assert ids1 == before_mid and not ids1 & later
    assert meta1["read_via"] == "list" and meta1["list_outside_window"] == len(later)
    assert meta1["cursor_after"] == meta2["cursor_before"] == "2025-04-01T00:00:00.000000Z"
    # second run: search from cursor - lookback, no list of contacts
    assert meta2["read_via"] == "search" and meta2["search_requests"] >= 1
    assert reads(log2, "search") and not reads(log2, "list")
    assert later <= ids2
    assert ids1 | ids2 == {c["id"] for c in store}


def test_first_run_via_list_drops_what_search_would_not_return(demo_dir, tmp_path):
    """Records whose cursor property is missing, empty or unparseable, or exactly at the window end, are not
    returned by a search range filter: the list path drops the same ones (and keeps end - 1 ms, a bare date,
    epoch-ms text)."""
    store = tmp_path / "store"
    shutil.copytree(demo_dir, store, ignore=shutil.ignore_patterns("ga4", "odoo"))
    recs = jsonl(store, "contacts")
    odd = ["2025-02-30T25:61:00Z", "0000-00-00T00:00:00Z", "", None, "yesterday", "2025-06-30 10:00:00",
           "2025-07-01T00:00:00.000Z", "2025-06-30T23:59:59.999Z", "2025-06-30T23:59:59.9996Z",
           "2025-03-01", str(iso_to_ms("2025-03-02T00:00:00Z"))]
    for r, value in zip(recs, odd):
        r["properties"]["lastmodifieddate"] = value
    del recs[len(odd)]["properties"]["lastmodifieddate"]
    with open(store / "api" / "hubspot" / "contacts.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in recs)
    got = {}
    for via in ("list", "search"):
        clock = FakeClock()
        d = {k: tmp_path / via / k for k in ("raw", "state", "deadletter")}
        with DemoServer(store, port=0, clock=clock, realism=False) as srv:
            rep = hubspot.extract(settings=contacts_via(srv, clock, via, archived_objects=[]), **run_kwargs(d))
        got[via] = read_load(load_of(rep, "contacts")["path"])
    rows_l, meta_l = got["list"]
    assert meta_l["read_via"] == "list"
    assert by_id(rows_l) == by_id(got["search"][0])
    ids = {r["id"] for r in rows_l}
    dropped = {recs[i]["id"] for i in (0, 1, 2, 3, 4, 5, 6, 8, len(odd))}
    kept = {recs[i]["id"] for i in (7, 9, 10)}
    assert not ids & dropped and kept <= ids
    assert len(rows_l) == len(recs) - len(dropped) and meta_l["list_outside_window"] == len(dropped)


def test_first_run_via_list_drops_realism_page_repeats(demo_dir, dirs):
    """Realism on: some list pages start one record early (the previous page's last again); the listing drops
    the repeat, so the load has no duplicates and every record once."""
    clock = FakeClock()
    with DemoServer(demo_dir, port=0, clock=clock, realism=True) as srv:
        s = settings(srv, clock, objects=["contacts", "feedback_submissions"], association_pairs=[],
                     include_email_events=False, archived_objects=[], list_page_size=10)
        rep = hubspot.extract(settings=s, **run_kwargs(dirs))
        log = srv.request_log()
    repeats = 0
    for obj in ("contacts", "feedback_submissions"):
        row = load_of(rep, obj)
        rows, meta = read_load(row["path"])
        store = jsonl(demo_dir, obj)
        assert row["duplicates_in_load"] == 0 == meta["duplicates_in_load"]
        assert sorted(r["id"] for r in rows) == sorted(c["id"] for c in store)
        assert meta["list_requests"] == len(reads(log, "list", obj)) <= math.ceil(len(store) / 10) + \
            meta["list_repeats"]
        repeats += meta["list_repeats"]
    assert repeats > 0   # the realism fired in this fixture (deterministic)


def test_history_via_setting_and_env(server, clock, dirs, monkeypatch):
    monkeypatch.setenv("CXW_HUBSPOT_TOKEN", "t")
    monkeypatch.delenv("CXW_HUBSPOT_HISTORY_VIA", raising=False)
    assert hubspot.HubspotSettings.from_env().history_via_list is True
    monkeypatch.setenv("CXW_HUBSPOT_HISTORY_VIA", "search")
    assert hubspot.HubspotSettings.from_env().history_via_list is False
    monkeypatch.setenv("CXW_HUBSPOT_HISTORY_VIA", "List")
    assert hubspot.HubspotSettings.from_env().history_via_list is True
    monkeypatch.setenv("CXW_HUBSPOT_HISTORY_VIA", "bulk")
    with pytest.raises(ConfigError, match="CXW_HUBSPOT_HISTORY_VIA"):
        hubspot.HubspotSettings.from_env()
    # backfills search even with the list setting (and create no cursor)
    rep = hubspot.extract(settings=contacts_only(server, clock), **run_kwargs(
        dirs, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC), mode="window"))
    assert read_load(load_of(rep, "contacts")["path"])[1]["read_via"] == "search"
    assert not reads(server.request_log(), "list")


# ---- item 14.5: no association is lost after a failure --------------------------------------------------------------
ASSOC_PATH = "/crm/v4/associations/"


def landed_associations(raw_root):
    """Every association key in every landed associations load."""
    out = set()
    for path in visible_loads(raw_root, "hubspot", "associations"):
        for a in read_load(path)[0]:
            out.add((a["from_type"], a["from_id"], a["to_type"], a["to_id"], a["type_id"]))
    return out


def served_associations(demo_dir):
    return {(a["from_type"], a["from_id"], a["to_type"], a["to_id"], a["type_id"])
            for a in jsonl(demo_dir, "associations")}


def assert_every_ticket_has_its_contact(raw_root, demo_dir):
    """Every ticket and every feedback submission of the store has the contact link it is served with
    (fct_support_tickets reads the ticket's; a submission's is the contact of its hs_contact_id)."""
    landed = landed_associations(raw_root)
    for obj in ("tickets", "feedback_submissions"):
        served = {(f, t) for (ft, f, tt, t, _) in served_associations(demo_dir) if ft == obj and tt == "contacts"}
        assert {f for f, _ in served} == {r["id"] for r in jsonl(demo_dir, obj)}, obj
        assert {(f, t) for (ft, f, tt, t, _) in landed if ft == obj and tt == "contacts"} == served, obj
    fb = {(r["id"], r["properties"]["hs_contact_id"]) for r in jsonl(demo_dir, "feedback_submissions")}
    assert {(f, t) for (ft, f, tt, t, _) in landed if ft == "feedback_submissions"} == fb


def pending_in_state(dirs):
    state = json.loads((dirs["state"] / "hubspot.json").read_text())
    return state["entities"].get("associations", {}).get("pending_from_ids") or {}


@pytest.mark.parametrize("fail_at", ["associations", "feedback_submissions"])
@pytest.mark.parametrize("rerun", ["same_window", "next_day"])
@pytest.mark.parametrize("batch", [1000, 20])
def test_associations_of_objects_landed_before_a_failure_land_on_the_next_run(server, clock, dirs, demo_dir,
                                                                                fail_at, rerun, batch):
    """A run fails after CRM objects landed (their cursors moved) but before their associations landed: the
    associations endpoint fails out (503 beyond max_attempts), or a later object's read fails. The next run — the
    extract task re-run for the same interval, or the next day's run — fetches the associations owed (durable in
    state), not only those of the records it extracts itself. ``batch`` 20: the first run derives the reverse pairs
    (issue 20) before failing."""
    s = settings(server, clock, include_email_events=False, archived_objects=[], association_batch_size=batch)
    if fail_at == "associations":
        server.inject_faults(ASSOC_PATH, [{"status": 503}] * 4, method="POST")
    else:  # contacts, companies, deals, tickets land; the first-run list of feedback submissions fails out
        server.inject_faults("/crm/v3/objects/feedback_submissions", [{"status": 503}] * 4, method="GET")
    with pytest.raises(ExtractorHTTPError, match="HTTP 503"):
        hubspot.extract(settings=s, **run_kwargs(dirs))
    assert visible_loads(dirs["raw"], "hubspot", "tickets") and not visible_loads(dirs["raw"], "hubspot",
                                                                                    "associations")
    assert pending_in_state(dirs)["tickets"]   # owed, durably
    end = WINDOW_END if rerun == "same_window" else datetime(2025, 7, 2, tzinfo=UTC)
    rep = hubspot.extract(settings=s, **run_kwargs(dirs, end=end))
    assert landed_associations(dirs["raw"]) == served_associations(demo_dir)
    assert_every_ticket_has_its_contact(dirs["raw"], demo_dir)
    assert pending_in_state(dirs) == {}
    meta = read_load(load_of(rep, "associations")["path"])[1]
    assert meta["from_ids_of_earlier_runs"] > 0   # the re-run's own records were (almost) none of them
    assert load_of(rep, "tickets")["rows"] < len(jsonl(demo_dir, "tickets"))
    # a further run owes nothing: no association is read again (no re-read of everything)
    server.reset()
    rep = hubspot.extract(settings=s, **run_kwargs(dirs, end=datetime(2025, 7, 3, tzinfo=UTC)))
    assert not [e for e in server.request_log() if e["path"].startswith(ASSOC_PATH)]
    assert load_of(rep, "associations")["rows"] == 0 and pending_in_state(dirs) == {}


def test_association_state_is_cleared_only_for_what_was_read():
    from extractors.hubspot import add_pending_associations, clear_pending_associations, pending_associations
    state = {"entities": {}}
    add_pending_associations(state, "tickets", ["1", "2"])
    add_pending_associations(state, "tickets", ["2", "3"])
    assert pending_associations(state) == {"tickets": ["1", "2", "3"]}
    clear_pending_associations(state, {"tickets": ["1", "2"]})
    assert pending_associations(state) == {"tickets": ["3"]}
    clear_pending_associations(state, {"tickets": ["3"]})
    assert pending_associations(state) == {}


# ---- issue 14: a new record's link to an unchanged record lands from both sides -------------------------------------
@pytest.mark.parametrize("batch", [1000, 20])
def test_unchanged_contacts_link_to_a_ticket_created_between_two_runs_lands(tmp_path, clock, dirs, batch):
    """HubSpot does not move a contact's lastmodifieddate when a ticket (deal, submission) is associated with it,
    so the second run does not search that contact again. Its contact->ticket link must still land: the
    extractor reads the other side of every association it reads (contacts->tickets for the new ticket's contact).
    The demo company is regenerated two weeks later (the world moved on) and extracted again; afterwards raw holds
    exactly the associations the demo serves, in both directions, and the second load holds each link once.
    ``batch`` 20: the first run derives the reverse pairs (issue 20); the second (searches) derives none."""
    import demo_company

    demo, a = tmp_path / "XS-42", datetime(2025, 6, 17, tzinfo=UTC)
    demo_company.generate(demo, scale="XS", seed=42, as_of="2025-06-17T00:00:00Z")
    with DemoServer(demo, port=0, clock=clock, realism=False) as srv:
        s = settings(srv, clock, include_email_events=False, archived_objects=[], association_batch_size=batch)
        hubspot.extract(settings=s, **run_kwargs(dirs, end=a))
    assert landed_associations(dirs["raw"]) == served_associations(demo)
    demo_company.generate(demo, scale="XS", seed=42)            # as of the window end, two weeks later
    with DemoServer(demo, port=0, clock=clock, realism=False) as srv:
        s = settings(srv, clock, include_email_events=False, archived_objects=[], association_batch_size=batch)
        rep = hubspot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    # the shape exists: tickets created between the runs whose contact was not extracted again
    contacts2 = {r["id"] for r in read_load(load_of(rep, "contacts")["path"])[0]}
    new_tickets = {t["id"] for t in jsonl(demo, "tickets") if iso_to_ms(t["createdAt"]) >= iso_to_ms(a.isoformat())}
    served = served_associations(demo)
    shape = {(c, t) for (ft, t, tt, c, _) in served if ft == "tickets" and tt == "contacts"
             and t in new_tickets and c not in contacts2}
    assert shape
    landed = landed_associations(dirs["raw"])
    assert {(c, t) for c, t in shape if ("contacts", c, "tickets", t, 15) in landed} == shape
    assert landed == served                       # nothing lost, nothing invented (both directions, feedback too)
    assert_every_ticket_has_its_contact(dirs["raw"], demo)
    rows, meta = read_load(load_of(rep, "associations")["path"])
    keys = [(r["from_type"], r["from_id"], r["to_type"], r["to_id"], r["type_id"]) for r in rows]
    assert len(keys) == len(set(keys)) and meta["duplicates_in_load"] == 0
    assert meta["to_ids_read_back"]["contacts->tickets"] >= len({c for c, _ in shape})
    assert meta["derived"] == {}


def test_associations_beyond_the_first_page_of_an_object_are_read(demo_dir, clock, dirs):
    """HubSpot's v4 batch read returns at most a page of associations per object (500) and a `paging.next.after`
    for the rest, read by sending `{id, after}` again. The demo company has no object with more than 500, so the server
    pages at 2 here: every association served must land, also those after an object's first page."""
    served = served_associations(demo_dir)
    per_object = {}
    for ft, f, tt, _t, _ in served:
        per_object[(ft, f, tt)] = per_object.get((ft, f, tt), 0) + 1
    assert max(per_object.values()) > 2  # some object's associations need a second (and third) page
    with DemoServer(demo_dir, port=0, clock=clock, realism=False, limits={"hubspot_association_page": 2}) as srv:
        hubspot.extract(settings=settings(srv, clock, include_email_events=False, archived_objects=[]),
                        **run_kwargs(dirs))
    assert landed_associations(dirs["raw"]) == served


def test_a_quiet_hour_reads_only_the_hour_and_lands_nothing(server, clock, dirs):
    """CXW_SCHEDULE=hourly: after the history, each hour reads [cursor - 10 min, hour end) per object. An hour in which
    nothing changed (the demo company is frozen at its as_of, 2025-07-01) lands empty loads - no row, cursor moved to
    the hour's end - with one search request per object (a page with nothing on it; 11 requests in all, 0.08 CPU-s
    measured on the XS company)."""
    from datetime import timedelta

    s = settings(server, clock)
    hubspot.extract(settings=s, **run_kwargs(dirs, end=WINDOW_END))
    for hour in (1, 2):
        end = WINDOW_END + timedelta(hours=hour)
        n_before = len(server.request_log())
        rep = hubspot.extract(settings=s, **run_kwargs(dirs, start=end - timedelta(hours=1), end=end))
        deltas = [l for l in rep["loads"] if l["entity"] in OBJECTS]
        assert len(deltas) == len(OBJECTS)
        assert all(l["cursor_after"].startswith(end.strftime("%Y-%m-%dT%H:00:00")) for l in deltas), deltas
        # nothing changed after the as_of: every load of the hour is empty (accounting only)
        assert {l["entity"]: l["rows"] for l in rep["loads"]} == {l["entity"]: 0 for l in rep["loads"]}
        searches = [e for e in server.request_log()[n_before:] if e["path"].endswith("/search")]
        assert len(searches) == len(OBJECTS), searches

