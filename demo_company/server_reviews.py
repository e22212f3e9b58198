"""Review sites for the demo server: Google Business Profile v4 reviews and Trustpilot business-units v1.

Shapes follow shared/docs/source-formats.md section 4 and the recorded samples
google_reviews_page1.json / trustpilot_reviews_page1.json.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from demo_company.server_store import parse_instant

if TYPE_CHECKING:  # pragma: no cover
    from demo_company.server import DemoServer, Request, Response

GOOGLE_PAGE_MAX = 50
TRUSTPILOT_PAGE_MAX = 100
TRUSTPILOT_PAGE_DEFAULT = 20
STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
PRIVATE_ONLY_FIELDS = ("referenceId", "referralEmail", "tags", "location", "invitation", "source")
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
GOOGLE_QUOTA_MESSAGE = ("Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service "
                        "'mybusiness.googleapis.com' for consumer 'project_number:0'.")
GOOGLE_AUTH_MESSAGE = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                       "or other valid authentication credential. See "
                       "https://developers.google.com/identity/sign-in/web/devconsole-project.")


def _resp(status: int, body: Any, headers: dict | None = None) -> "Response":
    from demo_company.server import Response
    return Response(status, body, headers or {})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(token) from None


def handle(app: "DemoServer", vendor: str, req: "Request") -> "Response":
    return google(app, req) if vendor == "google" else trustpilot(app, req)


# ================================================================================================ Google
def google_error_body(status: int, message: str | None = None) -> dict:
    default = {429: GOOGLE_QUOTA_MESSAGE, 401: GOOGLE_AUTH_MESSAGE, 503: "The service is currently unavailable.",
               500: "Internal error encountered.", 404: "Requested entity was not found.",
               403: "The caller does not have permission"}.get(status, f"HTTP {status}")
    return {"error": {"code": status, "message": message or default, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}


def _gerr(status: int, message: str | None = None, headers: dict | None = None) -> "Response":
    return _resp(status, google_error_body(status, message), headers)


def google(app: "DemoServer", req: "Request") -> "Response":
    conf = app.manifest.get("google") or {}
    token = req.bearer()
    if not token or not conf.get("token") or not secrets.compare_digest(token, str(conf["token"])):
        return _gerr(401, None, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
    ok, _, retry = app.limiter.hit("google_min", token, app.limits["google_per_min"], 60.0, app.clock())
    if not ok:
        return _gerr(429, None, {"Retry-After": str(retry)})
    parts = [p for p in req.path.split("/") if p]
    # /v4/accounts/{a}/locations/{l}/reviews[/{r}]
    if len(parts) in (6, 7) and parts[1] == "accounts" and parts[3] == "locations" and parts[5] == "reviews":
        if req.method != "GET":
            return _gerr(404, f"Method not found: {req.method} {req.path}")
        denied = _check_location(app, parts[2], parts[4])
        if denied:
            return denied
        location = f"accounts/{parts[2]}/locations/{parts[4]}"
        if len(parts) == 7:
            review = next((r for r in _google_reviews(app, location) if r.get("reviewId") == parts[6]), None)
            return _resp(200, review) if review else _gerr(404)
        return _google_list(app, req, location)
    # /v4/accounts/{a}/locations:batchGetReviews
    if len(parts) == 4 and parts[1] == "accounts" and parts[3] == "locations:batchGetReviews":
        if req.method != "POST":
            return _gerr(404, f"Method not found: {req.method} {req.path}")
        return _google_batch(app, req, parts[2])
    return _gerr(404, f"Requested entity was not found: {req.path}")


def _allowed_locations(app: "DemoServer") -> set[str]:
    return {str(x).rstrip("/").split("/")[-1] for x in (app.manifest.get("google") or {}).get("location_ids") or []}


def _check_location(app: "DemoServer", account: str, location: str) -> "Response | None":
    conf = app.manifest.get("google") or {}
    if str(conf.get("account_id")) != account or location not in _allowed_locations(app):
        return _gerr(403, "The caller does not have permission")
    return None


def _google_reviews(app: "DemoServer", location: str) -> list[dict]:
    return app.store.google.get(location, [])


def _order_key(order_by: str | None) -> str:
    norm = " ".join((order_by or "updateTime desc").split()).lower()
    if norm not in ("updatetime desc", "rating", "rating desc"):
        raise ValueError(order_by)
    return norm


def _sorted_reviews(items: list, order: str, review_of=lambda x: x) -> list:
    def ts(x):
        dt = parse_instant(review_of(x).get("updateTime"))
        return dt.timestamp() if dt else float("-inf")

    def rid(x):
        return str(review_of(x).get("reviewId") or "")

    def stars(x):
        return STARS.get(review_of(x).get("starRating"), 0)
    out = sorted(items, key=rid)
    out.sort(key=ts, reverse=True)            # newest first within equal ratings
    if order == "rating":
        out.sort(key=stars)
    elif order == "rating desc":
        out.sort(key=stars, reverse=True)
    return out


def _page_params(req_page_size: Any, req_token: Any) -> tuple[int, int]:
    try:
        size = int(req_page_size) if req_page_size not in (None, "") else GOOGLE_PAGE_MAX
    except (TypeError, ValueError):
        raise ValueError(f"Invalid pageSize: {req_page_size!r}") from None
    if size <= 0:
        size = GOOGLE_PAGE_MAX
    if size > GOOGLE_PAGE_MAX:
        raise ValueError(f"pageSize must be at most {GOOGLE_PAGE_MAX}, got {size}")
    position = 0
    if req_token:
        try:
            text = _unb64(str(req_token))
            if not text.startswith("p:"):
                raise ValueError(text)
            position = int(text[2:])
        except ValueError:
            raise ValueError("Invalid page token") from None
    return size, position


def _google_list(app: "DemoServer", req: "Request", location: str) -> "Response":
    try:
        order = _order_key(req.q("orderBy"))
        size, position = _page_params(req.q("pageSize"), req.q("pageToken"))
    except ValueError as exc:
        return _gerr(400, f"Invalid argument: {exc}")
    reviews = app.cached(("g_list", location, order), lambda: _sorted_reviews(_google_reviews(app, location), order))
    page = reviews[position:position + size]
    body: dict[str, Any] = {}
    if page:
        body["reviews"] = page
    rated = [STARS[r["starRating"]] for r in reviews if r.get("starRating") in STARS]
    if rated:
        body["averageRating"] = round(sum(rated) / len(rated), 1)
    if reviews:
        body["totalReviewCount"] = len(reviews)
    following = _b64(f"p:{position + size}") if position + size < len(reviews) else None
    token = req.cursor(_b64(f"p:{position}"), following)
    if token:
        body["nextPageToken"] = token
    return _resp(200, body)


def _google_batch(app: "DemoServer", req: "Request", account: str) -> "Response":
    from demo_company.server import BadJSON
    try:
        body = req.json_body()
    except BadJSON as exc:
        return _gerr(400, f"Invalid JSON payload received. {exc}")
    if not isinstance(body, dict):
        return _gerr(400, "Invalid JSON payload received. Expected an object.")
    names = body.get("locationNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return _gerr(400, "locationNames must be a non-empty list of 'accounts/*/locations/*' names")
    for name in names:
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "accounts" or parts[2] != "locations":
            return _gerr(400, f"Invalid location name: {name}")
        if parts[1] != account:
            return _gerr(400, f"Location {name} is not under accounts/{account}")
        denied = _check_location(app, parts[1], parts[3])
        if denied:
            return denied
    try:
        order = _order_key(body.get("orderBy"))
        size, position = _page_params(body.get("pageSize"), body.get("pageToken"))
    except ValueError as exc:
        return _gerr(400, f"Invalid argument: {exc}")
    ignore_rating_only = bool(body.get("ignoreRatingOnlyReviews"))

    def build():
        items = [{"name": n, "review": r} for n in dict.fromkeys(names) for r in _google_reviews(app, n)
                 if not (ignore_rating_only and not r.get("comment"))]
        return _sorted_reviews(items, order, review_of=lambda x: x["review"])
    items = app.cached(("g_batch", tuple(names), order, ignore_rating_only), build)
    out: dict[str, Any] = {}
    page = items[position:position + size]
    if page:
        out["locationReviews"] = page
    following = _b64(f"p:{position + size}") if position + size < len(items) else None
    token = req.cursor(_b64(f"p:{position}"), following)
    if token:
        out["nextPageToken"] = token
    return _resp(200, out)


# ================================================================================================ Trustpilot
def trustpilot_error_body(status: int, message: str | None = None) -> dict:
    if status == 429:
        return {"fault": {"faultstring": message or "Rate limit quota violation. Quota limit exceeded. "
                                                    "Identifier : _default",
                          "detail": {"errorcode": "policies.ratelimit.QuotaViolation"}}}
    if status == 401:
        return {"fault": {"faultstring": message or "Invalid ApiKey",
                          "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}
    default = {400: "Bad request", 404: "Not found", 500: "Internal server error",
               503: "Service unavailable"}.get(status, f"HTTP {status}")
    return {"message": message or default, "errorCode": status, "details": None}


def _terr(status: int, message: str | None = None, headers: dict | None = None) -> "Response":
    return _resp(status, trustpilot_error_body(status, message), headers)


def _fault(status: int, text: str, code: str) -> "Response":
    return _resp(status, {"fault": {"faultstring": text, "detail": {"errorcode": code}}})


def trustpilot(app: "DemoServer", req: "Request") -> "Response":
    conf = app.manifest.get("trustpilot") or {}
    parts = [p for p in req.path.split("/") if p]
    if parts[:3] == ["v1", "oauth", "oauth-business-users-for-applications"] and len(parts) == 4:
        if req.method != "POST":
            return _terr(404, f"No route for {req.method} {req.path}")
        if parts[3] in ("accesstoken", "refresh"):
            return _oauth_token(app, req, conf)
        return _terr(404, f"No route for {req.path}")

    private = parts[:2] == ["v1", "private"]
    if private:
        token = req.bearer()
        info = app.oauth_tokens.get(token or "")
        if token is None:
            return _fault(401, "Invalid access token", "oauth.v2.InvalidAccessToken")
        if info is None:
            return _fault(401, "Invalid access token", "oauth.v2.InvalidAccessToken")
        if app.clock() >= info["expires_at"]:
            return _fault(401, "Access Token expired", "keymanagement.service.access_token_expired")
        key = info["api_key"]
    else:
        key = req.headers.get("apikey") or req.q("apikey")
        if not key:
            return _fault(401, "Failed to resolve API Key variable request.header.apikey",
                          "steps.oauth.v2.FailedToResolveAPIKey")
        if not conf.get("api_key") or not secrets.compare_digest(str(key), str(conf["api_key"])):
            return _fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
    ok, _, retry = app.limiter.hit("tp_5min", key, app.limits["trustpilot_per_5min"], 300.0, app.clock())
    if not ok:
        return _terr(429, None, {"Retry-After": str(retry)})
    if req.method != "GET":
        return _terr(404, f"No route for {req.method} {req.path}")

    rest = parts[2:] if private else parts[1:]
    if not private and rest == ["business-units", "find"]:
        return _find_unit(app, req)
    if len(rest) == 3 and rest[0] == "business-units" and rest[2] == "reviews":
        return _tp_reviews(app, req, rest[1], private)
    if not private and len(rest) == 2 and rest[0] == "business-units":
        unit = _unit_info(app, rest[1])
        return _resp(200, _unit_body(app, req, unit)) if unit else _terr(404, "Business unit not found")
    return _terr(404, f"No route for {req.method} {req.path}")


def _oauth_token(app: "DemoServer", req: "Request", conf: dict) -> "Response":
    auth = req.headers.get("authorization", "")
    try:
        key, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":") if auth[:6].lower() == "basic " \
            else ("", "", "")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key, secret = "", ""
    if not (key and conf.get("api_key") and conf.get("api_secret")
            and secrets.compare_digest(key, str(conf["api_key"]))
            and secrets.compare_digest(secret, str(conf["api_secret"]))):
        return _resp(401, {"ErrorCode": "invalid_client", "Error": "ClientId is Invalid"})
    form = req.form_body()
    grant = form.get("grant_type", "")
    if req.path.endswith("/refresh") and not grant:
        grant = "refresh_token"
    if grant == "password":
        if not form.get("username") or not form.get("password"):
            return _resp(400, {"ErrorCode": "invalid_request", "Error": "username and password are required"})
    elif grant == "refresh_token":
        if app.oauth_refresh.get(form.get("refresh_token", "")) != key:
            return _resp(401, {"ErrorCode": "invalid_refresh_token", "Error": "Invalid Refresh Token"})
    elif grant != "client_credentials":
        return _resp(400, {"ErrorCode": "unsupported_grant_type", "Error": f"Unsupported grant type : {grant}"})
    ttl = int(app.limits["trustpilot_token_ttl_s"])
    access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    now = app.clock()
    app.oauth_tokens[access] = {"api_key": key, "expires_at": now + ttl}
    app.oauth_refresh[refresh] = key
    issued = str(int(now * 1000))
    return _resp(200, {
        "refresh_token_expires_in": str(ttl), "api_product_list": "[Trustpilot Public API, Service Reviews API]",
        "organization_name": "trustpilot", "developer.email": "demo@example.com", "token_type": "Bearer",
        "issued_at": issued, "client_id": key, "access_token": access, "refresh_token": refresh,
        "application_name": "cxw-demo", "scope": "", "refresh_token_issued_at": issued,
        "expires_in": str(ttl), "refresh_count": "0", "status": "approved"})


def _unit_info(app: "DemoServer", unit_id: str) -> dict | None:
    store = app.store
    if unit_id not in store.trustpilot:
        return None
    info = store.trustpilot_units.get(unit_id)
    if info:
        return info
    for extra in (app.manifest.get("trustpilot") or {}).get("business_units") or []:
        if isinstance(extra, dict) and str(extra.get("id")) == unit_id:
            return extra
    return {"id": unit_id, "identifyingName": unit_id, "displayName": unit_id}


def _unit_body(app: "DemoServer", req: "Request", unit: dict) -> dict:
    ident = unit.get("identifyingName") or unit["id"]
    return {"links": [{"href": f"{req.origin}/v1/business-units/{unit['id']}", "method": "GET",
                       "rel": "business-units"},
                      {"href": f"{req.origin}/v1/business-units/{unit['id']}/reviews", "method": "GET",
                       "rel": "business-units-reviews"}],
            "id": unit["id"], "displayName": unit.get("displayName") or ident,
            "name": {"identifying": ident, "referring": [ident, f"www.{ident}"]}}


def _find_unit(app: "DemoServer", req: "Request") -> "Response":
    wanted = (req.q("name") or "").strip().lower()
    for prefix in ("https://", "http://", "www."):
        if wanted.startswith(prefix):
            wanted = wanted[len(prefix):]
    wanted = wanted.rstrip("/")
    if not wanted:
        return _terr(400, "The 'name' parameter is required")
    for unit_id in app.store.trustpilot:
        unit = _unit_info(app, unit_id)
        if unit and str(unit.get("identifyingName", "")).lower() == wanted:
            return _resp(200, _unit_body(app, req, unit))
    return _terr(404, "Business unit not found")


def _parse_tp_time(text: str, name: str) -> float:
    dt = parse_instant(text.strip())
    if dt is None:
        raise ValueError(f"{name} must be YYYY-MM-DDTHH:MM:SS (UTC), got {text!r}")
    return dt.timestamp()


def _tp_reviews(app: "DemoServer", req: "Request", unit_id: str, private: bool) -> "Response":
    if unit_id not in app.store.trustpilot:
        return _terr(404, "Business unit not found")
    try:
        page = int(req.q("page") or 1)
        per_page = int(req.q("perPage") or TRUSTPILOT_PAGE_DEFAULT)
    except ValueError:
        return _terr(400, "page and perPage must be integers")
    if page < 1:
        return _terr(400, "page must be 1 or greater")
    if per_page < 1 or per_page > TRUSTPILOT_PAGE_MAX:
        return _terr(400, f"perPage must be between 1 and {TRUSTPILOT_PAGE_MAX}")
    order = (req.q("orderBy") or "createdat.desc").lower()
    if order not in ("createdat.asc", "createdat.desc"):
        return _terr(400, f"Invalid orderBy: {req.q('orderBy')!r} (createdat.asc or createdat.desc)")
    try:
        stars = {int(s) for s in req.q_list("stars")}
    except ValueError:
        return _terr(400, "stars must be a comma-separated list of 1-5")
    if any(s < 1 or s > 5 for s in stars):
        return _terr(400, "stars must be a comma-separated list of 1-5")
    languages = {lang.lower() for lang in req.q_list("language")} - {"all"}
    start = end = None
    if private:
        try:
            if req.q("startDateTime"):
                start = _parse_tp_time(req.q("startDateTime"), "startDateTime")
            if req.q("endDateTime"):
                end = _parse_tp_time(req.q("endDateTime"), "endDateTime")
        except ValueError as exc:
            return _terr(400, str(exc))

    def build():
        out = []
        for review in app.store.trustpilot[unit_id]:
            if stars and review.get("stars") not in stars:
                continue
            if languages and str(review.get("language", "")).lower() not in languages:
                continue
            created = parse_instant(review.get("createdAt"))
            ts = created.timestamp() if created else None
            if (start is not None or end is not None) and ts is None:
                continue
            if start is not None and ts < start:
                continue
            if end is not None and ts >= end:
                continue
            out.append((ts, review))
        known = sorted((x for x in out if x[0] is not None), key=lambda x: (x[0], str(x[1].get("id"))),
                       reverse=order == "createdat.desc")
        return [r for _, r in known] + [r for ts, r in out if ts is None]
    key = ("tp", unit_id, order, tuple(sorted(stars)), tuple(sorted(languages)), start, end)
    reviews = app.cached(key, build)
    shift = sum(1 for j in range(2, page + 1)
                if app.realism_repeat(("trustpilot", unit_id, private, key[2:], per_page), j - 1))
    first = max(0, (page - 1) * per_page - shift)
    items = reviews[first:first + per_page]
    if not private:
        items = [{k: v for k, v in r.items() if k not in PRIVATE_ONLY_FIELDS} for r in items]
    has_next = first + per_page < len(reviews)
    next_page = page if req.repeat_cursor else page + 1
    links = []
    if page > 1:
        links.append({"href": _page_href(req, page - 1), "method": "GET", "rel": "prev-page"})
    if has_next or req.repeat_cursor:
        links.append({"href": _page_href(req, next_page), "method": "GET", "rel": "next-page"})
    return _resp(200, {"links": links, "reviews": items})


def _page_href(req: "Request", page: int) -> str:
    pairs = parse_qsl(req.raw_query, keep_blank_values=True)
    if any(k == "page" for k, _ in pairs):
        pairs = [(k, str(page) if k == "page" else v) for k, v in pairs]
    else:
        pairs.append(("page", str(page)))
    return f"{req.origin}{req.path}?{urlencode(pairs, safe=',:')}"
