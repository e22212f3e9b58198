"""Demo vendor API server (demo_company/server.py) against a tiny store built here, over real HTTP."""
from __future__ import annotations

import base64
import email.utils
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo_company.server import DemoServer  # noqa: E402

SAMPLES = Path("/work/shared/samples/vendor-responses")
if not SAMPLES.exists():
    SAMPLES = REPO.parent / "shared" / "samples" / "vendor-responses"

HS_TOKEN, G_TOKEN, TP_KEY, TP_SECRET, ADMIN = "hs-test-token", "g-test-token", "tp-key", "tp-secret", "admin-secret"
ACCOUNT, LOC, LOC2, LOC_OTHER = "118043557362", "1073921", "2000002", "3000003"
BU = "5f1e2d3c4b5a69788796a5b4"
HS = {"Authorization": f"Bearer {HS_TOKEN}"}
GH = {"Authorization": f"Bearer {G_TOKEN}"}
TPH = {"apikey": TP_KEY}


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def iso_ms(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def hs_record(rid: int, props: dict, created: str, updated: str) -> dict:
    return {"id": str(rid), "properties": {**props, "hs_object_id": str(rid)}, "createdAt": created,
            "updatedAt": updated, "archived": False}


def _copies(records: list[dict]) -> list[dict]:
    """More records after the recorded ones (ids + 500000), so the recorded first pages have a next page."""
    out = []
    for rec in records:
        new_id = str(int(rec["id"]) + 500000)
        out.append({**rec, "id": new_id, "properties": {**rec["properties"], "hs_object_id": new_id}})
    return out


def build_store(root: Path, n_contacts: int = 40) -> Path:
    manifest = {
        "seed": 7, "scale": "T", "window": {"start": "2025-01-01", "end": "2025-07-01"}, "as_of": "2025-07-01",
        "hubspot": {"portal_id": 4815162, "token": HS_TOKEN},
        "google": {"account_id": ACCOUNT, "location_ids": [LOC, LOC2], "token": G_TOKEN},
        "trustpilot": {"business_unit_ids": [BU], "api_key": TP_KEY, "api_secret": TP_SECRET},
        "ga4": {"property_id": "1", "stream_id": "2"}, "admin": {"token": ADMIN},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    api = root / "api"

    # contacts: the recorded ones, then generated ones; a block of 6 shares one lastmodifieddate (tie-break)
    contacts = [r for f in ("hubspot_contacts_list_page1.json", "hubspot_contacts_list_page2.json")
                for r in sample(f)["body"]["results"]]
    for i in range(n_contacts - len(contacts)):
        rid = 200000 + i
        created = T0 + timedelta(days=i)
        updated = T0 + timedelta(days=60) if 10 <= i < 16 else created + timedelta(hours=i)
        props = {"email": f"person{i}@example.com", "firstname": f"First{i}", "lastname": f"Last{i}",
                 "lifecyclestage": "customer", "createdate": iso_ms(created), "lastmodifieddate": iso_ms(updated)}
        if i % 3 == 0:
            props["phone"] = f"+44 7000 {i:06d}"
        contacts.append(hs_record(rid, props, iso_ms(created), iso_ms(updated)))
    contacts.append({**hs_record(299999, {"email": "gone@example.com", "createdate": iso_ms(T0),
                                          "lastmodifieddate": iso_ms(T0)}, iso_ms(T0), iso_ms(T0)),
                     "archived": True, "archivedAt": iso_ms(T0 + timedelta(days=1))})
    write_jsonl(api / "hubspot" / "contacts.jsonl", contacts)

    tickets_body = sample("hubspot_tickets_list.json")["body"]["results"]
    tickets = [{k: v for k, v in t.items() if k != "associations"} for t in tickets_body]
    write_jsonl(api / "hubspot" / "tickets.jsonl", tickets + _copies(tickets))
    feedback = sample("hubspot_feedback_list.json")["body"]["results"]
    write_jsonl(api / "hubspot" / "feedback_submissions.jsonl", feedback + _copies(feedback))
    deals = sample("hubspot_deals_list.json")["body"]["results"]
    write_jsonl(api / "hubspot" / "deals.jsonl", deals + _copies(deals))
    write_jsonl(api / "hubspot" / "companies.jsonl", [
        hs_record(300001, {"name": "Acme", "domain": "acme.example", "createdate": iso_ms(T0),
                           "hs_lastmodifieddate": iso_ms(T0)}, iso_ms(T0), iso_ms(T0))])
    assoc = [{"from_type": "tickets", "from_id": t["id"], "to_type": "contacts",
              "to_id": t["associations"]["contacts"]["results"][0]["id"], "type_id": 16, "label": None}
             for t in tickets_body]
    assoc.append({"from_type": "tickets", "from_id": tickets_body[0]["id"], "to_type": "companies",
                  "to_id": "300001", "type_id": 26, "label": None})
    write_jsonl(api / "hubspot" / "associations.jsonl", assoc)

    events = list(sample("hubspot_email_events.json")["body"]["events"])
    base = events[-1]["created"]
    for i in range(36):
        kind = ["SENT", "DELIVERED", "OPEN", "CLICK"][i % 4]
        events.append({"id": f"ev{i:04d}", "created": base + 60_000 * (i + 1), "type": kind,
                       "recipient": f"person{i // 4}@example.com", "emailCampaignId": 31000000 + i % 2,
                       "portalId": 4815162, "appId": 113, "appName": "BatchEmail",
                       "sentBy": {"id": f"sb-{i // 4}", "created": base}})
    write_jsonl(api / "hubspot" / "email_events.jsonl", events)

    g_sample = sample("google_reviews_page1.json")["body"]["reviews"]
    g_rows = [{"location": f"accounts/{ACCOUNT}/locations/{LOC}", "review": r} for r in g_sample]
    for i in range(15):
        rid = f"GEN{i:03d}"
        when = iso_ms(T0 + timedelta(days=3 * i, minutes=i))
        review = {"name": f"accounts/{ACCOUNT}/locations/{LOC}/reviews/{rid}", "reviewId": rid,
                  "reviewer": {"displayName": f"Rev {i}", "isAnonymous": False},
                  "starRating": ["ONE", "TWO", "THREE", "FOUR", "FIVE"][i % 5], "createTime": when, "updateTime": when}
        if i % 2:
            review["comment"] = f"comment {i}"
        g_rows.append({"location": f"accounts/{ACCOUNT}/locations/{LOC}", "review": review})
    for i in range(4):
        rid = f"L2{i:03d}"
        when = iso_ms(T0 + timedelta(days=i))
        g_rows.append({"location": f"accounts/{ACCOUNT}/locations/{LOC2}", "review": {
            "name": f"accounts/{ACCOUNT}/locations/{LOC2}/reviews/{rid}", "reviewId": rid,
            "reviewer": {"displayName": "Anon", "isAnonymous": True}, "starRating": "THREE",
            "comment": "ok", "createTime": when, "updateTime": when}})
    write_jsonl(api / "google_reviews" / "reviews.jsonl", g_rows)

    tp_sample = sample("trustpilot_reviews_page1.json")["body"]["reviews"]
    tp = []
    for r in tp_sample:
        tp.append({**r, "referralEmail": "x@example.org", "tags": [], "location": None,
                   "invitation": {"businessUnitId": BU}})
    unit = tp_sample[0]["businessUnit"]
    for i in range(23):
        created = T0 + timedelta(days=5 * i, hours=3)
        # every fourth review is written with a +02:00 offset (same instant)
        created_text = ((created + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00" if i % 4 == 0
                        else created.strftime("%Y-%m-%dT%H:%M:%SZ"))
        tp.append({"links": [], "id": f"tp{i:022d}", "consumer": {"id": f"c{i}", "displayName": f"C {i}",
                                                                  "displayLocation": None, "numberOfReviews": 1},
                   "businessUnit": unit, "stars": i % 5 + 1, "title": f"t{i}", "text": f"text {i}",
                   "language": "en" if i % 3 else "vi", "createdAt": created_text, "updatedAt": None,
                   "experiencedAt": created_text, "referenceId": f"S{i:05d}", "referralEmail": f"c{i}@example.org",
                   "source": "InvitationApi", "tags": [{"group": "g", "value": "v"}], "location": None,
                   "invitation": {"businessUnitId": BU}, "isVerified": True, "status": "active",
                   "numberOfLikes": 0, "companyReply": None})
    write_jsonl(api / "trustpilot" / "reviews.jsonl", [{"business_unit_id": BU, "review": r} for r in tp])
    return root


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("demo") / "T-7")


@pytest.fixture(scope="module")
def srv(store_dir):
    # rate limits are exercised by their own servers with a fake clock; here they must not interfere
    with DemoServer(store_dir, realism=False, limits={"hubspot_search_per_s": 10_000, "hubspot_per_10s": 10_000}) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(srv):
    srv.reset()
    yield


@pytest.fixture
def clock():
    return FakeClock()


def shape(value):
    """The byte-shape of a JSON value: keys and types, not values (null matches anything)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def all_pages_hubspot(base, obj, params, per_page):
    seen, after, calls = [], None, 0
    while True:
        q = dict(params, limit=per_page)
        if after:
            q["after"] = after
        r = requests.get(f"{base}/crm/v3/objects/{obj}", headers=HS, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["results"])
        calls += 1
        assert calls < 200
        if "paging" not in body:
            return seen
        after = body["paging"]["next"]["after"]


# ============================================================================ HubSpot
def test_hubspot_auth_failures(srv):
    ref = sample("hubspot_no_auth.json")
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts?limit=2")
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json;charset=utf-8"
    assert list(r.json()) == list(ref["body"]) and r.json()["category"] == "INVALID_AUTHENTICATION"
    assert r.json()["message"] == ref["body"]["message"]
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"


def test_hubspot_list_matches_recorded_samples(srv):
    for name in ("hubspot_contacts_list_page1.json", "hubspot_tickets_list.json", "hubspot_feedback_list.json",
                 "hubspot_deals_list.json"):
        ref = sample(name)
        r = requests.get(srv.base_url + ref["request"]["path"], headers=HS)
        assert r.status_code == ref["status"]
        assert r.headers["Content-Type"] == ref["headers"]["Content-Type"]
        assert r.json() == ref["body"], name  # same records, keys, key order, paging and link
        assert list(json.loads(r.text)["results"][0]["properties"]) == list(ref["body"]["results"][0]["properties"])
    ref = sample("hubspot_contacts_list_page2.json")
    r = requests.get(srv.base_url + ref["request"]["path"], headers=HS)
    assert r.json() == ref["body"]


def test_hubspot_list_pages_until_exhaustion(srv, store_dir):
    expected = [json.loads(line)["id"] for line in (store_dir / "api/hubspot/contacts.jsonl").open()
                if not json.loads(line)["archived"]]
    got = all_pages_hubspot(srv.base_url, "contacts", {}, 7)
    ids = [r["id"] for r in got]
    assert ids == sorted(expected, key=int)  # each record once, id ascending
    assert all(set(r["properties"]) == {"firstname", "lastname", "email", "createdate", "lastmodifieddate",
                                        "hs_object_id"} for r in got)


def test_hubspot_realism_duplicates_dedupe_to_every_record(store_dir):
    with DemoServer(store_dir) as server:  # realism on (the default)
        got = all_pages_hubspot(server.base_url, "contacts", {}, 3)
    ids = [r["id"] for r in got]
    assert len(ids) > len(set(ids))                        # some page repeated the previous last record
    assert sorted(set(ids), key=int) == [r["id"] for r in all_pages_hubspot_plain(store_dir)]


def all_pages_hubspot_plain(store_dir):
    rows = [json.loads(line) for line in (store_dir / "api/hubspot/contacts.jsonl").open()]
    return sorted((r for r in rows if not r["archived"]), key=lambda r: int(r["id"]))


def test_hubspot_list_params(srv):
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts", headers=HS,
                     params={"limit": 100, "properties": "email,phone,not_a_property"})
    recs = r.json()["results"]
    assert all(list(x["properties"]) == ["email", "phone", "createdate", "lastmodifieddate", "hs_object_id"]
               for x in recs)
    assert any(x["properties"]["phone"] is None for x in recs)   # on the schema, not on the record → null
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts", headers=HS, params={"limit": 101})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts", headers=HS, params={"archived": "true"})
    assert [x["id"] for x in r.json()["results"]] == ["299999"] and r.json()["results"][0]["archived"] is True
    r = requests.get(srv.base_url + "/crm/v3/objects/tickets", headers=HS,
                     params={"associations": "contacts,companies", "limit": 10})
    first = r.json()["results"][0]
    assert first["associations"]["contacts"] == {"results": [{"id": "100359", "type": "ticket_to_contact"}]}
    assert first["associations"]["companies"]["results"] == [{"id": "300001", "type": "ticket_to_company"}]
    assert "companies" not in r.json()["results"][1]["associations"]
    r = requests.get(srv.base_url + "/crm/v3/objects/widgets", headers=HS)
    assert r.status_code == 404 and set(r.json()) == {"status", "message", "correlationId", "category"}
    r = requests.get(srv.base_url + "/crm/v3/objects/contacts/100280", headers=HS, params={"properties": "email"})
    assert r.json()["properties"]["email"] == "huong.hoang0@gmail.com"


def _search(srv, body, obj="contacts"):
    return requests.post(f"{srv.base_url}/crm/v3/objects/{obj}/search", headers=HS, json=body)


def test_hubspot_search_matches_recorded_sample(srv):
    ref = sample("hubspot_contacts_search.json")
    r = _search(srv, ref["request"]["body"])
    assert r.status_code == 200
    body = r.json()
    assert shape(body) == shape(ref["body"])
    assert list(body["results"][0]["properties"]) == list(ref["body"]["results"][0]["properties"])
    assert body["paging"]["next"] == {"after": "2", "link": "/crm/v3/objects/contacts/search?after=2"}


def test_hubspot_search_window_tiebreak_sorts_total(srv, clock):
    lo, hi = ms(T0 + timedelta(days=10)), ms(T0 + timedelta(days=61))
    window = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(lo)},
              {"propertyName": "lastmodifieddate", "operator": "LT", "value": hi}]
    sort = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    r = _search(srv, {"filterGroups": [{"filters": window}], "sorts": sort, "limit": 200,
                      "properties": ["lastmodifieddate"]})
    body = r.json()
    stamps = [x["properties"]["lastmodifieddate"] for x in body["results"]]
    assert body["total"] == len(body["results"]) > 6 and "paging" not in body
    assert stamps == sorted(stamps)
    tied = [x["id"] for x in body["results"] if x["properties"]["lastmodifieddate"] == iso_ms(T0 + timedelta(days=60))]
    assert len(tied) == 6 and tied == sorted(tied, key=int)          # ties in id order
    # resume inside the tie with hs_object_id GT (numeric, not lexicographic)
    tie_ms = ms(T0 + timedelta(days=60))
    r = _search(srv, {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(tie_ms)},
        {"propertyName": "hs_object_id", "operator": "GT", "value": tied[2]}]}], "sorts": sort, "limit": 10})
    assert [x["id"] for x in r.json()["results"]] == tied[3:]
    # OR of groups, IN, HAS_PROPERTY, BETWEEN, DESC
    r = _search(srv, {"filterGroups": [
        {"filters": [{"propertyName": "email", "operator": "IN", "values": ["PERSON1@example.com"]}]},
        {"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "200030", "highValue": 200033},
                     {"propertyName": "phone", "operator": "HAS_PROPERTY"}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]})
    assert [x["id"] for x in r.json()["results"]] == ["200033", "200030", "200001"]
    # limit / after paging and the total
    r1 = _search(srv, {"limit": 5}).json()
    r2 = _search(srv, {"limit": 5, "after": r1["paging"]["next"]["after"]}).json()
    assert r1["total"] == 40 and [x["id"] for x in r2["results"]][0] == "100359"
    assert "associations" not in r1["results"][0]
    # validation
    too_many = [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
    assert _search(srv, {"filterGroups": too_many}).status_code == 400
    six_plus = [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7
    assert _search(srv, {"filterGroups": [{"filters": six_plus}]}).status_code == 400
    assert _search(srv, {"limit": 201}).status_code == 400
    bad = requests.post(srv.base_url + "/crm/v3/objects/contacts/search", headers={**HS, "Content-Type": "application/json"},
                        data=b"{not json")
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"


def test_hubspot_search_10000_cap(tmp_path):
    root = build_store(tmp_path / "big", n_contacts=10_050)
    with DemoServer(root, realism=False, limits={"hubspot_search_per_s": 1000}) as server:
        ok = requests.post(server.base_url + "/crm/v3/objects/contacts/search", headers=HS,
                           json={"limit": 200, "after": 9800})
        assert ok.status_code == 200 and ok.json()["total"] == 10_050 and len(ok.json()["results"]) == 200
        ref = sample("hubspot_search_past_10000.json")
        r = requests.post(server.base_url + ref["request"]["path"], headers=HS, json=ref["request"]["body"])
        assert r.status_code == 400
        assert list(r.json()) == list(ref["body"]) and r.json()["message"] == ref["body"]["message"]
        assert r.json()["category"] == "VALIDATION_ERROR"


def test_hubspot_v4_batch_read(srv):
    r = requests.post(srv.base_url + "/crm/v4/associations/tickets/contacts/batch/read", headers=HS,
                      json={"inputs": [{"id": "101794"}, {"id": "101830"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "COMPLETE" and {"startedAt", "completedAt"} <= set(body)
    assert body["results"][0] == {"from": {"id": "101794"}, "to": [
        {"toObjectId": 100359, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 16, "label": None}]}]}
    # reverse direction is derived (contact → ticket, typeId 15)
    r = requests.post(srv.base_url + "/crm/v4/associations/contacts/tickets/batch/read", headers=HS,
                      json={"inputs": [{"id": "100359"}, {"id": "1"}]})
    assert r.status_code == 207 and r.json()["numErrors"] == 1
    assert r.json()["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 15
    r = requests.post(srv.base_url + "/crm/v4/associations/tickets/contacts/batch/read", headers=HS,
                      json={"inputs": [{"id": str(i)} for i in range(1001)]})
    assert r.status_code == 400


def test_hubspot_email_events(srv, store_dir):
    ref = sample("hubspot_email_events.json")
    r = requests.get(srv.base_url + ref["request"]["path"], headers=HS)
    assert r.json() == ref["body"]
    events, offset = [], None
    while True:
        params = {"limit": 7, **({"offset": offset} if offset else {})}
        body = requests.get(srv.base_url + "/email/public/v1/events", headers=HS, params=params).json()
        events.extend(body["events"])
        if not body["hasMore"]:
            break
        offset = body["offset"]
    assert len(events) == 40 and len({e["id"] for e in events}) == 40
    start, end = events[10]["created"], events[20]["created"]
    body = requests.get(srv.base_url + "/email/public/v1/events", headers=HS,
                        params={"startTimestamp": start, "endTimestamp": end}).json()
    assert [e["id"] for e in body["events"]] == [e["id"] for e in events[10:21]]   # both bounds inclusive
    assert body["hasMore"] is False
    body = requests.get(srv.base_url + "/email/public/v1/events", headers=HS,
                        params={"eventType": "CLICK", "campaignId": 31000001}).json()
    assert body["events"] and all(e["type"] == "CLICK" and e["emailCampaignId"] == 31000001 for e in body["events"])


def test_hubspot_rate_limit(store_dir, clock):
    with DemoServer(store_dir, clock=clock, limits={"hubspot_per_10s": 5}) as server:
        url = server.base_url + "/crm/v3/objects/contacts"
        for i in range(5):
            r = requests.get(url, headers=HS)
            assert r.status_code == 200
            assert r.headers["X-HubSpot-RateLimit-Remaining"] == str(4 - i)
            assert r.headers["X-HubSpot-RateLimit-Max"] == "5"
            assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            assert "X-HubSpot-RateLimit-Secondly-Remaining" in r.headers
            clock.now += 1
        r = requests.get(url, headers=HS)
        assert r.status_code == 429 and r.headers["Retry-After"] == "5"
        body = r.json()
        assert list(body) == ["status", "message", "errorType", "correlationId", "policyName", "requestId"]
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        clock.now += 5
        assert requests.get(url, headers=HS).status_code == 200
        # search: 5 per second per token
        server.reset()
        codes = [requests.post(url + "/search", headers=HS, json={}).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


# ============================================================================ Google
def greviews(srv, loc=LOC, **params):
    return requests.get(f"{srv.base_url}/v4/accounts/{ACCOUNT}/locations/{loc}/reviews", headers=GH, params=params)


def test_google_auth_and_errors(srv):
    r = requests.get(f"{srv.base_url}/v4/accounts/{ACCOUNT}/locations/{LOC}/reviews")
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "message", "status"} and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = greviews(srv, loc=LOC_OTHER)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = greviews(srv, orderBy="updateTime")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert greviews(srv, pageSize=51).status_code == 400
    r = requests.get(f"{srv.base_url}/v4/nothing", headers=GH)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


def test_google_matches_sample_and_pages(srv):
    ref = sample("google_reviews_page1.json")
    r = requests.get(srv.base_url + ref["request"]["path"], headers=GH)
    body = r.json()
    assert list(body) == list(ref["body"])
    assert body["reviews"] == ref["body"]["reviews"]  # the three newest are the recorded ones
    assert shape(body) == shape(ref["body"])
    seen, token = [], None
    while True:
        body = greviews(srv, pageSize=4, **({"pageToken": token} if token else {})).json()
        seen.extend(body["reviews"])
        assert body["totalReviewCount"] == 18
        if "nextPageToken" not in body:
            break
        token = body["nextPageToken"]
    assert len(seen) == 18 and len({x["reviewId"] for x in seen}) == 18
    times = [x["updateTime"] for x in seen]
    assert times == sorted(times, reverse=True)
    rating = [x["starRating"] for x in greviews(srv, orderBy="rating", pageSize=50).json()["reviews"]]
    order = ["ONE", "TWO", "THREE", "FOUR", "FIVE"]
    assert [order.index(s) for s in rating] == sorted(order.index(s) for s in rating)
    rating_desc = greviews(srv, orderBy="rating desc").json()["reviews"]
    assert rating_desc[0]["starRating"] == "FIVE"
    assert greviews(srv, pageToken="bogus").status_code == 400


def test_google_batch_get_reviews(srv):
    url = f"{srv.base_url}/v4/accounts/{ACCOUNT}/locations:batchGetReviews"
    names = [f"accounts/{ACCOUNT}/locations/{LOC}", f"accounts/{ACCOUNT}/locations/{LOC2}"]
    seen, token = [], None
    while True:
        body = requests.post(url, headers=GH, json={"locationNames": names, "pageSize": 10, "pageToken": token,
                                                    "orderBy": "updateTime desc"}).json()
        seen.extend(body["locationReviews"])
        token = body.get("nextPageToken")
        if not token:
            break
    assert len(seen) == 22 and all(set(x) == {"name", "review"} for x in seen)
    assert {x["name"] for x in seen} == set(names)
    bad = requests.post(url, headers={**GH, "Content-Type": "application/json"}, data=b"{")
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    denied = requests.post(url, headers=GH, json={"locationNames": [f"accounts/{ACCOUNT}/locations/{LOC_OTHER}"]})
    assert denied.status_code == 403


def test_google_quota(store_dir, clock):
    with DemoServer(store_dir, clock=clock, limits={"google_per_min": 3}) as server:
        codes = [greviews(server).status_code for _ in range(3)]
        r = greviews(server)
        assert codes == [200] * 3 and r.status_code == 429
        assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED" and r.json()["error"]["code"] == 429
        assert int(r.headers["Retry-After"]) == 60
        clock.now += 60
        assert greviews(server).status_code == 200


# ============================================================================ Trustpilot
def tp_token(srv) -> str:
    basic = base64.b64encode(f"{TP_KEY}:{TP_SECRET}".encode()).decode()
    r = requests.post(srv.base_url + "/v1/oauth/oauth-business-users-for-applications/accesstoken",
                      headers={"Authorization": f"Basic {basic}"},
                      data={"grant_type": "password", "username": "u@example.com", "password": "pw"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] == "359999" and body["token_type"] == "Bearer" and body["refresh_token"]
    return body["access_token"]


def test_trustpilot_oauth_and_auth(srv):
    url = srv.base_url + "/v1/oauth/oauth-business-users-for-applications/accesstoken"
    wrong = base64.b64encode(f"{TP_KEY}:nope".encode()).decode()
    assert requests.post(url, headers={"Authorization": f"Basic {wrong}"},
                         data={"grant_type": "client_credentials"}).status_code == 401
    token = tp_token(srv)
    r = requests.get(f"{srv.base_url}/v1/private/business-units/{BU}/reviews", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert requests.get(f"{srv.base_url}/v1/private/business-units/{BU}/reviews",
                        headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.get(f"{srv.base_url}/v1/business-units/{BU}/reviews").status_code == 401
    assert requests.get(f"{srv.base_url}/v1/business-units/{BU}/reviews", headers={"apikey": "x"}).status_code == 401
    r = requests.get(f"{srv.base_url}/v1/business-units/find", headers=TPH, params={"name": "hidden-cafe.example.com"})
    assert r.status_code == 200
    assert r.json()["id"] == BU and r.json()["name"]["identifying"] == "hidden-cafe.example.com"
    assert {"id", "displayName", "name", "links"} <= set(r.json())
    assert requests.get(f"{srv.base_url}/v1/business-units/find", headers=TPH,
                        params={"name": "nobody.example"}).status_code == 404


def test_trustpilot_public_sample_and_paging(srv):
    ref = sample("trustpilot_reviews_page1.json")
    r = requests.get(srv.base_url + ref["request"]["path"], headers=TPH)
    body = r.json()
    assert list(body) == list(ref["body"])
    ref_review = ref["body"]["reviews"][0]
    public_keys = [k for k in ref_review if k not in ("referenceId", "source")]
    assert list(body["reviews"][0]) == public_keys            # the public endpoint drops the private fields
    assert body["reviews"][0]["id"] == ref_review["id"]
    assert body["links"] == [{"href": f"{srv.base_url}/v1/business-units/{BU}/reviews?perPage=2&page=2",
                              "method": "GET", "rel": "next-page"}]
    seen, url, pages = [], f"{srv.base_url}/v1/business-units/{BU}/reviews?perPage=4", 0
    while url:
        body = requests.get(url, headers=TPH).json()
        seen.extend(body["reviews"])
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next-page"]
        url = nxt[0] if nxt else None
        pages += 1
    assert len(seen) == 25 and len({x["id"] for x in seen}) == 25 and pages == 7
    created = [x["createdAt"] for x in seen]
    assert len(created) == 25
    assert requests.get(f"{srv.base_url}/v1/business-units/{BU}/reviews?perPage=101", headers=TPH).status_code == 400
    stars = requests.get(f"{srv.base_url}/v1/business-units/{BU}/reviews?stars=1,2&perPage=100", headers=TPH).json()
    assert stars["reviews"] and {x["stars"] for x in stars["reviews"]} <= {1, 2}


def test_trustpilot_private_fields_and_date_filter(srv):
    token = tp_token(srv)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{srv.base_url}/v1/private/business-units/{BU}/reviews"
    body = requests.get(url, headers=auth, params={"perPage": 100, "orderBy": "createdat.asc"}).json()
    assert {"referenceId", "referralEmail", "tags", "source"} <= set(body["reviews"][0])
    ref_keys = set(sample("trustpilot_reviews_page1.json")["body"]["reviews"][0])
    assert ref_keys <= set(body["reviews"][-1])
    # startDateTime is an instant: the +02:00 review at 2025-01-21T05:00+02:00 = 03:00Z is on the boundary
    start = "2025-01-21T03:00:00"
    got = requests.get(url, headers=auth, params={"perPage": 100, "orderBy": "createdat.asc",
                                                  "startDateTime": start}).json()["reviews"]
    first = got[0]
    assert first["createdAt"] == "2025-01-21T05:00:00+02:00"
    instants = [datetime.fromisoformat(x["createdAt"].replace("Z", "+00:00")) for x in got]
    assert instants == sorted(instants) and min(instants) == datetime(2025, 1, 21, 3, tzinfo=timezone.utc)
    end = requests.get(url, headers=auth, params={"perPage": 100, "endDateTime": start}).json()["reviews"]
    assert len(end) + len(got) == 25                            # half-open: the boundary lands once
    assert requests.get(url, headers=auth, params={"startDateTime": "yesterday"}).status_code == 400


def test_trustpilot_realism_duplicates(store_dir):
    with DemoServer(store_dir) as server:
        seen, page = [], 1
        while True:
            body = requests.get(f"{server.base_url}/v1/business-units/{BU}/reviews",
                                headers=TPH, params={"perPage": 2, "page": page}).json()
            seen.extend(x["id"] for x in body["reviews"])
            if not any(link["rel"] == "next-page" for link in body["links"]):
                break
            page += 1
    assert len(seen) > 25 and len(set(seen)) == 25


def test_trustpilot_throttle(store_dir, clock):
    with DemoServer(store_dir, clock=clock, limits={"trustpilot_per_5min": 2}) as server:
        url = f"{server.base_url}/v1/business-units/{BU}/reviews"
        assert [requests.get(url, headers=TPH).status_code for _ in range(2)] == [200, 200]
        r = requests.get(url, headers=TPH)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 300
        assert r.json()["fault"]["detail"]["errorcode"] == "policies.ratelimit.QuotaViolation"
        clock.now += 300
        assert requests.get(url, headers=TPH).status_code == 200


# ============================================================================ faults and admin
def inject(srv, prefix, faults):
    r = requests.post(srv.base_url + "/_demo/faults", headers={"X-Demo-Admin": ADMIN},
                      json={"path_prefix": prefix, "faults": faults})
    assert r.status_code == 200, r.text


def test_admin_requires_token(srv):
    assert requests.post(srv.base_url + "/_demo/reset").status_code == 403
    assert requests.get(srv.base_url + "/_demo/log", headers={"X-Demo-Admin": "wrong"}).status_code == 403


def test_reset_with_caches_gives_the_state_of_a_just_started_server(srv):
    # the bench keeps one server per data set across repetitions and resets it like this before each one
    url = srv.base_url + "/crm/v3/objects/contacts"
    assert requests.get(url, headers=HS, params={"limit": 2}).status_code == 200
    assert srv.caches and srv.request_log()
    r = requests.post(srv.base_url + "/_demo/reset", headers={"X-Demo-Admin": ADMIN})
    assert r.json() == {"reset": True, "caches": False}
    assert srv.caches and not srv.request_log()  # a plain reset keeps the response caches
    r = requests.post(srv.base_url + "/_demo/reset", headers={"X-Demo-Admin": ADMIN}, json={"caches": True})
    assert r.json() == {"reset": True, "caches": True}
    assert not srv.caches and not srv.oauth_tokens and not srv.request_log()
    assert requests.get(url, headers=HS, params={"limit": 2}).status_code == 200


def test_faults_429_seconds_http_date_503_then_normal(srv):
    inject(srv, "/crm/v3/objects/contacts", [{"status": 429, "retry_after": "2"},
                                             {"status": 429, "retry_after_http_date": True, "seconds": 2},
                                             {"status": 503}])
    url = srv.base_url + "/crm/v3/objects/contacts"
    r1, r2, r3, r4 = (requests.get(url, headers=HS) for _ in range(4))
    assert r1.status_code == 429 and r1.headers["Retry-After"] == "2" and r1.json()["errorType"] == "RATE_LIMIT"
    assert r2.status_code == 429
    when = email.utils.parsedate_to_datetime(r2.headers["Retry-After"])
    assert 0 <= (when - datetime.now(timezone.utc)).total_seconds() <= 3
    assert r3.status_code == 503 and r3.json()["status"] == "error"
    assert r4.status_code == 200
    inject(srv, "/v4/", [{"status": 503}])
    r = greviews(srv)
    assert r.status_code == 503 and r.json()["error"]["status"] == "UNAVAILABLE"


def test_fault_truncated_body_and_reset(srv):
    inject(srv, "/v1/business-units", [{"truncate": True}, {"reset": True}])
    url = f"{srv.base_url}/v1/business-units/{BU}/reviews"
    r = requests.get(url, headers=TPH)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, headers=TPH)
    assert requests.get(url, headers=TPH).status_code == 200


def test_fault_cursor_loop_and_delay(srv):
    first = requests.get(srv.base_url + "/crm/v3/objects/contacts?limit=3", headers=HS).json()
    after = first["paging"]["next"]["after"]
    inject(srv, "/crm/v3/objects/contacts", [{"repeat_cursor": True, "delay": 0.2}])
    looped = requests.get(srv.base_url + "/crm/v3/objects/contacts", headers=HS, params={"limit": 3, "after": after})
    assert looped.json()["paging"]["next"]["after"] == after
    assert looped.elapsed.total_seconds() >= 0.2
    body = greviews(srv, pageSize=3).json()
    inject(srv, "/v4/", [{"repeat_cursor": True}])
    again = greviews(srv, pageSize=3, pageToken=body["nextPageToken"]).json()
    assert again["nextPageToken"] == body["nextPageToken"]


def test_request_log_has_no_secrets(srv):
    requests.get(srv.base_url + "/crm/v3/objects/contacts?limit=1", headers=HS)
    requests.get(f"{srv.base_url}/v1/business-units/{BU}/reviews?apikey={TP_KEY}")
    log = requests.get(srv.base_url + "/_demo/log", headers={"X-Demo-Admin": ADMIN}).json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in log][:1] == [("GET", "/crm/v3/objects/contacts", 200)]
    text = json.dumps(log)
    assert HS_TOKEN not in text and TP_KEY not in text


def test_cli_ready_file_and_sigterm(store_dir, tmp_path):
    import signal
    import subprocess
    import time
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "demo_company.server", "--data", str(store_dir),
                             "--ready-file", str(ready)], cwd=str(REPO), stdout=subprocess.PIPE)
    try:
        for _ in range(100):
            if ready.exists():
                break
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid
        assert requests.get(info["base_url"] + "/crm/v3/objects/contacts?limit=1", headers=HS).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read().decode().strip() == info["base_url"]
    finally:
        if proc.poll() is None:
            proc.kill()
