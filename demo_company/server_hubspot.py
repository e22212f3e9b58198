"""HubSpot side of the demo server: CRM v3 list/read/search, v4 association batch read, v1 email events.

Shapes follow shared/docs/source-formats.md section 2 and the recorded samples in
shared/samples/vendor-responses/hubspot_*.json.
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import secrets
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from demo_company.server_store import (ALWAYS_PROPERTIES, DEFAULT_PROPERTIES, OBJECT_ALIASES, SINGULAR,
                                       HubSpotObject, id_sort_key, iso_to_ms)

if TYPE_CHECKING:  # pragma: no cover
    from demo_company.server import DemoServer, Request, Response

LIST_MAX = 100
SEARCH_MAX = 200
EMAIL_MAX = 1000
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS_TOTAL = 5, 6, 18
BATCH_MAX_INPUTS = 1000
ASSOC_PAGE = 500
SEARCH_CAP_MESSAGE = ("Search results are limited to 10,000 records per query; narrow the filters "
                      "(e.g. by hs_lastmodifieddate) to page further.")
NO_AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                   "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
BAD_AUTH_MESSAGE = ("The OAuth token used to make this call is invalid or has expired. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
_NUM_RE = re.compile(r"^-?\d+(\.\d+)?$")

CATEGORY_BY_STATUS = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                      404: "OBJECT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
                      500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
                      504: "GATEWAY_TIMEOUT"}


def _resp(status: int, body: Any, headers: dict | None = None) -> "Response":
    from demo_company.server import Response
    return Response(status, body, headers or {})


def error_body(status: int, message: str | None = None, category: str | None = None) -> dict:
    if status == 429:
        return rate_limit_body("TEN_SECONDLY_ROLLING")
    return {"status": "error", "message": message or _default_message(status),
            "correlationId": str(uuid.uuid4()), "category": category or CATEGORY_BY_STATUS.get(status, "ERROR")}


def _default_message(status: int) -> str:
    return {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}.get(status, f"HTTP {status}")


def rate_limit_body(policy: str) -> dict:
    what = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}[policy]
    return {"status": "error", "message": f"You have reached your {what} limit.", "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": policy, "requestId": str(uuid.uuid4())}


def _err(status: int, message: str, category: str | None = None) -> "Response":
    return _resp(status, error_body(status, message, category))


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ----------------------------------------------------------------------------------------------- entry
def handle(app: "DemoServer", req: "Request") -> "Response":
    token = app.manifest.get("hubspot", {}).get("token")
    got = req.bearer()
    if got is None:
        return _with_headers(app, None, _err(401, NO_AUTH_MESSAGE, "INVALID_AUTHENTICATION"))
    if not token or not secrets.compare_digest(got, str(token)):
        return _with_headers(app, None, _err(401, BAD_AUTH_MESSAGE, "INVALID_AUTHENTICATION"))

    now = app.clock()
    lim = app.limits
    window = lim["hubspot_interval_ms"] / 1000.0
    ok, _, retry = app.limiter.hit("hs_10s", got, lim["hubspot_per_10s"], window, now, count=False)
    if not ok:
        return _with_headers(app, got, _resp(429, rate_limit_body("TEN_SECONDLY_ROLLING"),
                                             {"Retry-After": str(retry)}))
    ok, _, retry = app.limiter.hit("hs_daily", got, lim["hubspot_daily"], 86_400, now, count=False)
    if not ok:
        return _with_headers(app, got, _resp(429, rate_limit_body("DAILY"), {"Retry-After": str(retry)}))
    if req.method == "POST" and req.path.endswith("/search"):
        ok, _, retry = app.limiter.hit("hs_search", got, lim["hubspot_search_per_s"], 1.0, now)
        if not ok:
            return _with_headers(app, got, _resp(429, rate_limit_body("SECONDLY"), {"Retry-After": str(retry)}))
    app.limiter.hit("hs_10s", got, lim["hubspot_per_10s"], window, now)
    app.limiter.hit("hs_daily", got, lim["hubspot_daily"], 86_400, now)
    try:
        resp = _route(app, req)
    except _Invalid as exc:
        resp = _err(400, exc.message, "VALIDATION_ERROR")
    return _with_headers(app, got, resp)


def _with_headers(app: "DemoServer", token: str | None, resp: "Response") -> "Response":
    lim, now = app.limits, app.clock()
    per10, window = int(lim["hubspot_per_10s"]), lim["hubspot_interval_ms"] / 1000.0
    secondly = max(1, per10 // 10)
    used10 = app.limiter.used("hs_10s", token, window, now) if token else 0
    used1 = app.limiter.used("hs_10s", token, 1.0, now) if token else 0
    used_day = app.limiter.used("hs_daily", token, 86_400, now) if token else 0
    resp.headers.setdefault("X-HubSpot-RateLimit-Interval-Milliseconds", str(int(lim["hubspot_interval_ms"])))
    resp.headers.setdefault("X-HubSpot-RateLimit-Max", str(per10))
    resp.headers.setdefault("X-HubSpot-RateLimit-Remaining", str(max(0, per10 - used10)))
    resp.headers.setdefault("X-HubSpot-RateLimit-Secondly", str(secondly))
    resp.headers.setdefault("X-HubSpot-RateLimit-Secondly-Remaining", str(max(0, secondly - used1)))
    resp.headers.setdefault("X-HubSpot-RateLimit-Daily", str(int(lim["hubspot_daily"])))
    resp.headers.setdefault("X-HubSpot-RateLimit-Daily-Remaining", str(max(0, int(lim["hubspot_daily"]) - used_day)))
    return resp


def _route(app: "DemoServer", req: "Request") -> "Response":
    parts = [p for p in req.path.split("/") if p]
    if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
        obj = OBJECT_ALIASES.get(parts[3].lower())
        if obj is None:
            return _err(404, f"Unable to infer object type from: {parts[3]}", "OBJECT_NOT_FOUND")
        if len(parts) == 4:
            return list_objects(app, req, obj) if req.method == "GET" else _method_not_allowed(req)
        if len(parts) == 5 and parts[4] == "search":
            return search(app, req, obj) if req.method == "POST" else _method_not_allowed(req)
        if len(parts) == 5:
            return get_object(app, req, obj, parts[4]) if req.method == "GET" else _method_not_allowed(req)
    if parts[:3] == ["crm", "v4", "associations"] and len(parts) == 7 and parts[5:] == ["batch", "read"]:
        return batch_read(app, req, parts[3], parts[4]) if req.method == "POST" else _method_not_allowed(req)
    if parts == ["email", "public", "v1", "events"]:
        return email_events(app, req) if req.method == "GET" else _method_not_allowed(req)
    return _err(404, f"Resource not found: {req.method} {req.path}", "OBJECT_NOT_FOUND")


def _method_not_allowed(req: "Request") -> "Response":
    return _err(405, f"Method {req.method} not allowed on {req.path}", "METHOD_NOT_ALLOWED")


# ----------------------------------------------------------------------------------------------- helpers
def _int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise _Invalid(f"Invalid value for '{name}': {value!r} is not an integer") from None


def _properties_for(obj: HubSpotObject, requested: list[str] | None) -> list[str]:
    if not requested:
        return DEFAULT_PROPERTIES[obj.name]
    names: list[str] = []
    for name in requested:
        if name in obj.schema and name not in names:
            names.append(name)
    for name in ALWAYS_PROPERTIES[obj.name]:
        if name not in names:
            names.append(name)
    return names


def render(obj: HubSpotObject, rec: dict, names: list[str], with_history: list[str] | None = None) -> dict:
    props = rec.get("properties") or {}
    out_props = {}
    for name in names:
        value = props.get(name)
        if value is None and name == "hs_object_id" and rec.get("id") is not None:
            value = str(rec["id"])
        out_props[name] = value
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key == "properties":
            out["properties"] = out_props
        elif key not in ("associations", "propertiesWithHistory"):
            out[key] = value
    if "properties" not in out:
        out["properties"] = out_props
    if with_history:
        out["propertiesWithHistory"] = {
            name: ([{"value": props[name], "timestamp": rec.get("updatedAt"), "sourceType": "API",
                     "sourceId": None, "updatedByUserId": None}] if props.get(name) is not None else [])
            for name in with_history if name in obj.schema}
    return out


def _association_block(app: "DemoServer", obj: str, rec_id: Any, to_types: list[str]) -> dict:
    block = {}
    for to in to_types:
        items = app.store.associations.get((obj, to), {}).get(str(rec_id))
        if not items:
            continue
        seen, results = set(), []
        for to_id, _type_id, _label in items:
            if to_id in seen:
                continue
            seen.add(to_id)
            results.append({"id": to_id, "type": f"{SINGULAR[obj]}_to_{SINGULAR[to]}"})
        block[to] = {"results": results}
    return block


def _assoc_types(req: "Request") -> list[str]:
    out = []
    for name in req.q_list("associations"):
        canon = OBJECT_ALIASES.get(name.lower())
        if canon and canon not in out:
            out.append(canon)
    return out


# ----------------------------------------------------------------------------------------------- CRM v3
def list_objects(app: "DemoServer", req: "Request", name: str) -> "Response":
    obj = app.store.hubspot[name]
    limit = _int_param(req.q("limit"), "limit", 10)
    if limit < 1 or limit > LIST_MAX:
        raise _Invalid(f"limit must be between 1 and {LIST_MAX}, got {limit}")
    after_raw = req.q("after")
    after = _int_param(after_raw, "after", 0)
    if after < 0:
        raise _Invalid(f"Invalid 'after' cursor: {after_raw!r}")
    archived = (req.q("archived") or "false").lower() == "true"
    records = app.cached(("hs_list", name, archived),
                         lambda: [r for r in obj.records if bool(r.get("archived")) == archived])
    start = after
    if start > 0 and app.realism_repeat(("hubspot", name, archived, limit), start // limit):
        start -= 1  # a record was inserted before the cursor meanwhile: the previous page's last comes again
    page = records[start:start + limit]
    names = _properties_for(obj, req.q_list("properties"))
    history = req.q_list("propertiesWithHistory")
    to_types = _assoc_types(req)
    results = []
    for rec in page:
        out = render(obj, rec, names, history)
        if to_types:
            block = _association_block(app, name, rec.get("id"), to_types)
            if block:
                out["associations"] = block
        results.append(out)
    body: dict[str, Any] = {"results": results}
    following = str(start + limit) if start + limit < len(records) else None
    cursor = req.cursor(str(after), following)
    if cursor is not None:
        body["paging"] = {"next": {"after": cursor, "link": f"/crm/v3/objects/{name}?after={cursor}&limit={limit}"}}
    return _resp(200, body)


def get_object(app: "DemoServer", req: "Request", name: str, object_id: str) -> "Response":
    obj = app.store.hubspot[name]
    id_property = req.q("idProperty")
    rec = None
    if id_property and id_property != "hs_object_id":
        rec = next((r for r in obj.records if (r.get("properties") or {}).get(id_property) == object_id), None)
    else:
        rec = obj.by_id.get(object_id)
    archived = (req.q("archived") or "false").lower() == "true"
    if rec is None or bool(rec.get("archived")) != archived:
        return _resp(404, {"status": "error", "message": "Object not found.  objectId are usually numeric.",
                           "correlationId": str(uuid.uuid4()), "context": {"id": [object_id]},
                           "category": "OBJECT_NOT_FOUND"})
    out = render(obj, rec, _properties_for(obj, req.q_list("properties")), req.q_list("propertiesWithHistory"))
    block = _association_block(app, name, rec.get("id"), _assoc_types(req))
    if block:
        out["associations"] = block
    return _resp(200, out)


def _cmp_value(obj: HubSpotObject, rec: dict | None, prop: str, raw: Any, is_filter: bool = False):
    """A comparable (kind, value) for a record or filter value; dates become epoch ms."""
    if raw is None:
        return None
    if prop in obj.date_props:
        text = str(raw).strip()
        if _NUM_RE.match(text):
            return ("n", float(text))
        ms = obj.prop_ms(rec, prop) if rec is not None and not is_filter else iso_to_ms(text)
        if ms is None and len(text) == 10:
            ms = iso_to_ms(text + "T00:00:00Z")
        return None if ms is None else ("n", float(ms))
    if isinstance(raw, bool):
        return ("s", str(raw).lower())
    if isinstance(raw, (int, float)):
        return ("n", float(raw))
    text = str(raw)
    if _NUM_RE.match(text.strip()):
        return ("n", float(text.strip()))
    return ("s", text.lower())


def _record_raw(rec: dict, prop: str) -> Any:
    value = (rec.get("properties") or {}).get(prop)
    if value is None and prop == "hs_object_id":
        value = rec.get("id")
    return value


def _compile_filter(obj: HubSpotObject, flt: Any):
    if not isinstance(flt, dict):
        raise _Invalid("Each filter must be an object with propertyName and operator")
    prop, op = flt.get("propertyName"), str(flt.get("operator") or "").upper()
    if not isinstance(prop, str) or not prop:
        raise _Invalid("Filter is missing propertyName")
    if op not in OPERATORS:
        raise _Invalid(f"Invalid operator {flt.get('operator')!r}; allowed: {', '.join(sorted(OPERATORS))}")
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        want = op == "HAS_PROPERTY"
        return lambda rec: (_record_raw(rec, prop) not in (None, "")) == want
    if op in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values:
            raise _Invalid(f"Operator {op} requires a non-empty 'values' list")
        wanted = {_cmp_value(obj, None, prop, v, True) for v in values}
        if op == "IN":
            return lambda rec: _cmp_value(obj, rec, prop, _record_raw(rec, prop)) in wanted
        return lambda rec: _cmp_value(obj, rec, prop, _record_raw(rec, prop)) not in wanted
    if "value" not in flt or flt["value"] is None:
        raise _Invalid(f"Operator {op} requires a 'value'")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern_tokens = [str(flt["value"]).lower()]  # '*' wildcards allowed, as HubSpot does

        def contains(rec):
            raw = _record_raw(rec, prop)
            if raw is None:
                return False
            text = str(raw).lower()
            tokens = set(re.split(r"[\s,;]+", text)) | {text}
            return any(fnmatch.fnmatchcase(t, p) for t in tokens for p in pattern_tokens)
        if op == "CONTAINS_TOKEN":
            return contains
        return lambda rec: not contains(rec)
    value = _cmp_value(obj, None, prop, flt["value"], True)
    if value is None:
        raise _Invalid(f"Invalid value {flt['value']!r} for property {prop}")
    if op == "BETWEEN":
        if flt.get("highValue") is None:
            raise _Invalid("Operator BETWEEN requires 'highValue'")
        high = _cmp_value(obj, None, prop, flt["highValue"], True)
        if high is None or high[0] != value[0]:
            raise _Invalid(f"Invalid highValue {flt['highValue']!r} for property {prop}")
        return lambda rec: _between(_cmp_value(obj, rec, prop, _record_raw(rec, prop)), value, high)
    if op == "EQ":
        return lambda rec: _cmp_value(obj, rec, prop, _record_raw(rec, prop)) == value
    if op == "NEQ":
        return lambda rec: _cmp_value(obj, rec, prop, _record_raw(rec, prop)) != value
    import operator as _op
    fn = {"LT": _op.lt, "LTE": _op.le, "GT": _op.gt, "GTE": _op.ge}[op]

    def compare(rec):
        got = _cmp_value(obj, rec, prop, _record_raw(rec, prop))
        return got is not None and got[0] == value[0] and fn(got[1], value[1])
    return compare


def _between(got, low, high) -> bool:
    return got is not None and got[0] == low[0] and low[1] <= got[1] <= high[1]


def _search_matches(obj: HubSpotObject, groups: list, sorts: list) -> list[dict]:
    compiled = [[_compile_filter(obj, f) for f in (g.get("filters") or [])] for g in groups]
    candidates = [r for r in obj.records if not r.get("archived")]
    if compiled:
        candidates = [r for r in candidates if any(all(f(r) for f in group) for group in compiled)]
    candidates.sort(key=lambda r: id_sort_key(r.get("id")))
    if not sorts:
        return candidates
    prop, descending = sorts[0]
    keyed = [(_cmp_value(obj, r, prop, _record_raw(r, prop)), r) for r in candidates]
    present = [(k, r) for k, r in keyed if k is not None]
    missing = [r for k, r in keyed if k is None]
    present.sort(key=lambda kr: kr[0], reverse=descending)  # stable: ties stay in id order
    return [r for _, r in present] + missing


def search(app: "DemoServer", req: "Request", name: str) -> "Response":
    from demo_company.server import BadJSON
    obj = app.store.hubspot[name]
    try:
        body = req.json_body()
    except BadJSON as exc:
        raise _Invalid(f"Invalid input JSON: {exc}") from None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _Invalid("Invalid input JSON: expected an object")
    limit = _int_param(body.get("limit"), "limit", 10)
    if limit < 1 or limit > SEARCH_MAX:
        raise _Invalid(f"limit must be between 1 and {SEARCH_MAX}, got {limit}")
    after = _int_param(body.get("after"), "after", 0)
    if after < 0:
        raise _Invalid(f"Invalid 'after': {body.get('after')!r}")
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _Invalid("filterGroups must be a list of {filters: [...]} objects")
    if len(groups) > MAX_GROUPS:
        raise _Invalid(f"Too many filter groups: {len(groups)} (max {MAX_GROUPS})")
    total_filters = 0
    for group in groups:
        filters = group.get("filters") or []
        if not isinstance(filters, list):
            raise _Invalid("filters must be a list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise _Invalid(f"Too many filters in a group: {len(filters)} (max {MAX_FILTERS_PER_GROUP})")
        total_filters += len(filters)
    if total_filters > MAX_FILTERS_TOTAL:
        raise _Invalid(f"Too many filters: {total_filters} (max {MAX_FILTERS_TOTAL} across all groups)")
    raw_sorts = body.get("sorts") or []
    if not isinstance(raw_sorts, list):
        raise _Invalid("sorts must be a list")
    if len(raw_sorts) > 1:
        raise _Invalid("Only one sort is supported")
    sorts = []
    for s in raw_sorts:
        if isinstance(s, str):
            sorts.append((s.lstrip("-"), s.startswith("-")))
        elif isinstance(s, dict) and isinstance(s.get("propertyName"), str):
            direction = str(s.get("direction") or "ASCENDING").upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise _Invalid(f"Invalid sort direction {s.get('direction')!r}")
            sorts.append((s["propertyName"], direction == "DESCENDING"))
        else:
            raise _Invalid("Each sort needs propertyName and direction")
    requested = body.get("properties")
    if requested is not None and (not isinstance(requested, list) or not all(isinstance(p, str) for p in requested)):
        raise _Invalid("properties must be a list of strings")
    if after + limit > app.limits["hubspot_search_cap"]:
        return _resp(400, {"status": "error", "message": SEARCH_CAP_MESSAGE, "correlationId": str(uuid.uuid4()),
                           "category": "VALIDATION_ERROR"})
    key = ("hs_search", name, json.dumps(groups, sort_keys=True, default=str), tuple(sorts))
    matches = app.cached(key, lambda: _search_matches(obj, groups, sorts))
    names = _properties_for(obj, requested)
    results = [render(obj, r, names) for r in matches[after:after + limit]]
    out: dict[str, Any] = {"total": len(matches), "results": results}
    following = str(after + limit) if after + limit < len(matches) else None
    cursor = req.cursor(str(after), following)
    if cursor is not None:
        out["paging"] = {"next": {"after": cursor, "link": f"/crm/v3/objects/{name}/search?after={cursor}"}}
    return _resp(200, out)


# ----------------------------------------------------------------------------------------------- v4 batch read
def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_read(app: "DemoServer", req: "Request", from_raw: str, to_raw: str) -> "Response":
    from demo_company.server import BadJSON
    started = _iso_now()
    from_type, to_type = OBJECT_ALIASES.get(from_raw.lower()), OBJECT_ALIASES.get(to_raw.lower())
    if from_type is None or to_type is None:
        bad = from_raw if from_type is None else to_raw
        return _err(404, f"Unable to infer object type from: {bad}", "OBJECT_NOT_FOUND")
    try:
        body = req.json_body()
    except BadJSON as exc:
        raise _Invalid(f"Invalid input JSON: {exc}") from None
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and i.get("id") is not None for i in inputs):
        raise _Invalid("Body must be {\"inputs\": [{\"id\": \"...\"}, ...]}")
    if len(inputs) > BATCH_MAX_INPUTS:
        raise _Invalid(f"Too many inputs: {len(inputs)} (max {BATCH_MAX_INPUTS})")
    table = app.store.associations.get((from_type, to_type), {})
    results, errors = [], []
    for item in inputs:
        from_id = str(item["id"])
        rows = table.get(from_id)
        if not rows:
            errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                           "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                           "context": {"fromObjectId": [from_id]},
                           "message": f"No {SINGULAR[to_type]} is associated with {SINGULAR[from_type]} {from_id}."})
            continue
        grouped: dict[str, list] = {}
        for to_id, type_id, label in rows:
            grouped.setdefault(to_id, []).append({"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label})
        to_list = [{"toObjectId": int(t) if t.isdigit() else t, "associationTypes": types}
                   for t, types in grouped.items()]
        try:
            offset = int(_decode(item["after"])) if item.get("after") else 0
        except ValueError:
            raise _Invalid(f"Invalid 'after' for input {from_id}") from None
        page = int(app.limits.get("hubspot_association_page", ASSOC_PAGE))
        result: dict[str, Any] = {"from": {"id": from_id}, "to": to_list[offset:offset + page]}
        if offset + page < len(to_list):
            result["paging"] = {"next": {"after": _encode(str(offset + page)), "link": None}}
        results.append(result)
    out: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        out["numErrors"] = len(errors)
        out["errors"] = errors
    out["startedAt"] = started
    out["completedAt"] = _iso_now()
    return _resp(207 if errors else 200, out)


# ----------------------------------------------------------------------------------------------- v1 email events
def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(token) from None


def email_events(app: "DemoServer", req: "Request") -> "Response":
    store = app.store
    limit = _int_param(req.q("limit"), "limit", EMAIL_MAX)
    if limit < 1:
        raise _Invalid(f"limit must be positive, got {limit}")
    limit = min(limit, EMAIL_MAX)
    start = _int_param(req.q("startTimestamp"), "startTimestamp", None) if req.q("startTimestamp") else None
    end = _int_param(req.q("endTimestamp"), "endTimestamp", None) if req.q("endTimestamp") else None
    offset_token = req.q("offset")
    try:
        position = int(_decode(offset_token)) if offset_token else 0
        if position < 0:
            raise ValueError(offset_token)
    except ValueError:
        raise _Invalid(f"Invalid offset: {offset_token!r}") from None
    event_type = (req.q("eventType") or "").upper() or None
    campaign = req.q("campaignId")
    recipient = (req.q("recipient") or "").strip().lower() or None
    app_id = req.q("appId")
    exclude_filtered = (req.q("excludeFilteredEvents") or "false").lower() == "true"
    lo, hi = store.email_range(start, end)

    def build():
        if not (event_type or campaign or recipient or app_id or exclude_filtered):
            return None
        out = []
        for e in store.email_events[lo:hi]:
            if event_type and str(e.get("type", "")).upper() != event_type:
                continue
            if campaign and str(e.get("emailCampaignId")) != campaign:
                continue
            if recipient and str(e.get("recipient", "")).lower() != recipient:
                continue
            if app_id and str(e.get("appId")) != app_id:
                continue
            if exclude_filtered and e.get("filteredEvent"):
                continue
            out.append(e)
        return out
    filtered = app.cached(("hs_email", lo, hi, event_type, campaign, recipient, app_id, exclude_filtered), build)
    if filtered is None:
        page = store.email_events[lo + position:min(hi, lo + position + limit)]
        total = hi - lo
    else:
        page = filtered[position:position + limit]
        total = len(filtered)
    following = position + len(page)
    has_more = following < total
    token = req.cursor(_encode(str(position)), _encode(str(following)))
    if req.repeat_cursor:
        has_more = True
    return _resp(200, {"hasMore": has_more, "offset": token, "events": page})
