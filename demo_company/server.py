"""Demo vendor API server: HubSpot, Google Business Profile v4 reviews and Trustpilot v1 on one port.

Serves a generated demo directory (docs/contracts.md section 3) over real HTTP so that the extractors can be
run, unchanged, against something that behaves like the vendors: auth, paging cursors, search caps, rate
limits, and injectable faults (429 / 503 / truncated bodies / connection resets / cursor loops / delays).
See demo_company/SERVER.md.

    python -m demo_company.server --data DIR [--host 127.0.0.1] [--port 0] [--ready-file PATH]

    with DemoServer(data_dir) as srv:
        requests.get(srv.base_url + "/crm/v3/objects/contacts", headers=...)
"""
from __future__ import annotations

import argparse
import email.utils
import json
import math
import os
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit, urlencode

from demo_company import server_hubspot, server_reviews
from demo_company.server_store import Store, load_store

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

JSON_TYPE = "application/json;charset=utf-8"

DEFAULT_LIMITS: dict[str, float] = {
    "hubspot_per_10s": 190,          # TEN_SECONDLY_ROLLING, private app on a Professional/Enterprise portal (Free/Starter: 100)
    "hubspot_interval_ms": 10_000,
    "hubspot_search_per_s": 5,       # search endpoints, per token
    "hubspot_daily": 250_000,        # reported in headers and enforced (DAILY policy)
    "hubspot_search_cap": 10_000,    # search: after + limit may not pass this
    "hubspot_association_page": 500, # v4 batch read: associations per from-object and page (then paging.next.after)
    "google_per_min": 300,           # Business Profile APIs, 300 QPM
    "trustpilot_per_5min": 833,      # Trustpilot's recommended ceiling
    "trustpilot_token_ttl_s": 359_999,
}
REALISM_SHARE = 10  # one in N later pages repeats the previous page's last record (when realism is on)


class BadJSON(ValueError):
    pass


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]          # lower-case names
    body: bytes
    host: str
    repeat_cursor: bool = False

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def q_list(self, name: str) -> list[str]:
        """Comma lists and repeated parameters both: properties=a,b&properties=c → [a, b, c]."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def json_body(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJSON(str(exc)) from None

    def form_body(self) -> dict[str, str]:
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return {}
        return {k: v[0] for k, v in parsed.items()}

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    def cursor(self, current: str | None, following: str | None) -> str | None:
        """The cursor to hand out: the next one, or (fault repeat_cursor) the one just used again."""
        if self.repeat_cursor:
            return current if current is not None else following
        return following


@dataclass
class Response:
    status: int
    body: Any = None                 # JSON-serialisable, or bytes
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    """Sliding-window request log per (policy, key), driven by the injected clock."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()

    def hit(self, policy: str, key: str, limit: float, window: float, now: float,
            count: bool = True) -> tuple[bool, int, int]:
        """(allowed, remaining after this call, seconds until a slot frees)."""
        with self._lock:
            dq = self._hits[(policy, key)]
            while dq and dq[0] <= now - window:
                dq.popleft()
            if len(dq) >= limit:
                retry = max(1, math.ceil(dq[0] + window - now))
                return False, 0, retry
            if count:
                dq.append(now)
            return True, max(0, int(limit) - len(dq)), 0

    def used(self, policy: str, key: str, window: float, now: float) -> int:
        with self._lock:
            dq = self._hits[(policy, key)]
            return sum(1 for t in dq if t > now - window)


class FaultQueue:
    def __init__(self) -> None:
        self._rules: list[dict] = []
        self._lock = threading.Lock()

    def add(self, path_prefix: str, faults: list[dict], method: str | None = None) -> None:
        with self._lock:
            self._rules.append({"path_prefix": path_prefix, "method": method, "faults": list(faults)})

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pop(self, method: str, path: str) -> dict | None:
        with self._lock:
            for rule in self._rules:
                if rule["faults"] and path.startswith(rule["path_prefix"]) and (
                        rule["method"] is None or rule["method"].upper() == method):
                    fault = rule["faults"].pop(0)
                    self._rules = [r for r in self._rules if r["faults"]]
                    return fault
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [dict(r, faults=list(r["faults"])) for r in self._rules]


def vendor_of(path: str) -> str:
    if path.startswith("/crm/") or path.startswith("/email/"):
        return "hubspot"
    if path.startswith("/v4/"):
        return "google"
    if path.startswith("/v1/"):
        return "trustpilot"
    return "unknown"


def new_id() -> str:
    return str(uuid.uuid4())


def redact_query(raw_query: str) -> str:
    pairs = parse_qs(raw_query, keep_blank_values=True)
    if not any(k.lower() in ("apikey", "access_token", "key") for k in pairs):
        return raw_query
    return urlencode([(k, "REDACTED" if k.lower() in ("apikey", "access_token", "key") else v)
                      for k, vs in pairs.items() for v in vs])


class DemoServer:
    """The demo vendor APIs on one port. `clock` (seconds) drives rate limits and token expiry."""

    def __init__(self, data_dir: str | Path, port: int = 0, clock: Callable[[], float] | None = None,
                 limits: dict[str, float] | None = None, host: str = "127.0.0.1",
                 admin_token: str | None = None, realism: bool = True, quiet: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.clock = clock or time.time
        unknown = set(limits or {}) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}")
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.realism = realism
        self.quiet = quiet
        self.store: Store | None = None
        self.limiter = RateLimiter()
        self.faults = FaultQueue()
        self.log: list[dict] = []
        self._log_lock = threading.Lock()
        self.oauth_tokens: dict[str, dict] = {}       # Trustpilot access token -> {api_key, expires_at}
        self.oauth_refresh: dict[str, str] = {}       # refresh token -> api key
        self.caches: dict[str, Any] = {}
        self.cache_lock = threading.Lock()
        self._admin_token_arg = admin_token
        self.admin_token: str | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "DemoServer":
        if self._httpd is not None:
            return self
        self.store = load_store(self.data_dir)
        m = self.store.manifest
        self.admin_token = (self._admin_token_arg or (m.get("admin") or {}).get("token")
                            or m.get("admin_token") or (m.get("demo") or {}).get("admin_token")
                            or secrets.token_hex(16))
        handler = type("BoundHandler", (_Handler,), {"server_app": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="demo-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def manifest(self) -> dict:
        assert self.store is not None
        return self.store.manifest

    # ----------------------------------------------------------------- admin helpers for tests
    def inject_faults(self, path_prefix: str, faults: list[dict], method: str | None = None) -> None:
        self.faults.add(path_prefix, faults, method)

    def reset(self, caches: bool = False) -> None:
        """Clear faults, rate-limit counters and the request log; with ``caches`` also the response caches (sorted
        lists, search matches) and issued OAuth tokens: the state of a server just started on the same data."""
        self.faults.clear()
        self.limiter.reset()
        with self._log_lock:
            self.log.clear()
        if caches:
            with self.cache_lock:
                self.caches.clear()
            self.oauth_tokens.clear()
            self.oauth_refresh.clear()

    def request_log(self) -> list[dict]:
        with self._log_lock:
            return list(self.log)

    def cached(self, key: Any, build: Callable[[], Any], size: int = 64) -> Any:
        with self.cache_lock:
            if key in self.caches:
                return self.caches[key]
        value = build()
        with self.cache_lock:
            if len(self.caches) >= size:
                self.caches.pop(next(iter(self.caches)))
            self.caches[key] = value
        return value

    def realism_repeat(self, salt: Any, page_index: int) -> bool:
        """Deterministic: does this later page start one record early (a record was inserted meanwhile)?

        One page in every REALISM_SHARE of a query's pages (never the first), at an offset fixed by `salt`.
        """
        if not self.realism or page_index < 1:
            return False
        return (zlib.crc32(repr(salt).encode()) + page_index) % REALISM_SHARE == 0

    # ----------------------------------------------------------------- dispatch
    def handle(self, req: Request) -> tuple[Response, dict | None]:
        if req.path.startswith("/_demo/"):
            return self._admin(req), None
        vendor = vendor_of(req.path)
        fault = self.faults.pop(req.method, req.path)
        if fault:
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("status"):
                return self._fault_response(vendor, fault), fault
            req.repeat_cursor = bool(fault.get("repeat_cursor"))
        if vendor == "hubspot":
            resp = server_hubspot.handle(self, req)
        elif vendor in ("google", "trustpilot"):
            resp = server_reviews.handle(self, vendor, req)
        else:
            resp = Response(404, {"status": "error", "message": f"No route for {req.method} {req.path}",
                                  "correlationId": new_id(), "category": "OBJECT_NOT_FOUND"})
        return resp, fault

    def _fault_response(self, vendor: str, fault: dict) -> Response:
        status = int(fault["status"])
        headers: dict[str, str] = {}
        if status == 429 or "retry_after" in fault or fault.get("retry_after_http_date"):
            if fault.get("retry_after_http_date"):
                seconds = float(fault.get("seconds", 1))
                headers["Retry-After"] = email.utils.formatdate(self.clock() + seconds, usegmt=True)
            elif "retry_after" in fault:
                if fault["retry_after"] is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
            else:
                headers["Retry-After"] = "1"
        if vendor == "hubspot":
            body = server_hubspot.error_body(status, fault.get("message"))
        elif vendor == "google":
            body = server_reviews.google_error_body(status, fault.get("message"))
        elif vendor == "trustpilot":
            body = server_reviews.trustpilot_error_body(status, fault.get("message"))
        else:
            body = {"status": "error", "message": fault.get("message") or "injected fault"}
        return Response(status, body, headers)

    def _admin(self, req: Request) -> Response:
        if not self.admin_token or not secrets.compare_digest(
                req.headers.get("x-demo-admin", ""), self.admin_token):
            return Response(403, {"error": "X-Demo-Admin header missing or wrong"})
        if req.path == "/_demo/faults" and req.method == "POST":
            try:
                body = req.json_body() or {}
            except BadJSON as exc:
                return Response(400, {"error": f"malformed JSON: {exc}"})
            prefix, faults = body.get("path_prefix"), body.get("faults")
            if not isinstance(prefix, str) or not isinstance(faults, list) or not all(
                    isinstance(f, dict) for f in faults):
                return Response(400, {"error": "need {path_prefix: str, faults: [{...}]}"})
            allowed = {"status", "retry_after", "retry_after_http_date", "seconds", "truncate", "reset",
                       "repeat_cursor", "delay", "message"}
            bad = [k for f in faults for k in f if k not in allowed]
            if bad:
                return Response(400, {"error": f"unknown fault keys {sorted(set(bad))}"})
            self.faults.add(prefix, faults, body.get("method"))
            return Response(200, {"queued": len(faults), "pending": self.faults.pending()})
        if req.path == "/_demo/faults" and req.method == "GET":
            return Response(200, {"pending": self.faults.pending()})
        if req.path == "/_demo/reset" and req.method == "POST":
            try:
                body = req.json_body() or {}
            except BadJSON as exc:
                return Response(400, {"error": f"malformed JSON: {exc}"})
            caches = bool(body.get("caches")) if isinstance(body, dict) else False
            self.reset(caches=caches)
            return Response(200, {"reset": True, "caches": caches})
        if req.path == "/_demo/log" and req.method == "GET":
            return Response(200, {"requests": self.request_log()})
        return Response(404, {"error": f"no admin route {req.method} {req.path}"})

    def record(self, req: Request, status: int, fault: dict | None) -> None:
        if req.path.startswith("/_demo/"):
            return
        entry = {"method": req.method, "path": req.path, "query": redact_query(req.raw_query),
                 "status": status, "vendor": vendor_of(req.path), "at": self.clock()}
        if fault:
            entry["fault"] = fault
        with self._log_lock:
            self.log.append(entry)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid delayed-ACK stalls
    server_version = "DemoVendorAPI/1.0"
    server_app: DemoServer

    def log_message(self, fmt: str, *args: Any) -> None:  # never echo headers; quiet unless asked
        if not self.server_app.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def _dispatch(self) -> None:
        app = self.server_app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        req = Request(method=self.command, path=parts.path, raw_query=parts.query,
                      query=parse_qs(parts.query, keep_blank_values=True),
                      headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                      host=self.headers.get("Host") or f"{app.host}:{app.port}")
        try:
            resp, fault = app.handle(req)
        except Exception as exc:  # a server bug must not look like a vendor answer we meant
            resp, fault = Response(500, {"status": "error", "message": f"demo server error: {exc!r}"}), None
        full = resp.body if isinstance(resp.body, bytes) else dumps(resp.body)
        truncate = bool(fault and fault.get("truncate"))
        reset = bool(fault and fault.get("reset"))
        payload = full[: max(1, len(full) // 2)] if truncate else full
        app.record(req, resp.status, fault)
        self.send_response(resp.status)
        self.send_header("Content-Type", JSON_TYPE)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))  # reset: announces the full body, sends a third
        self.end_headers()
        if reset:
            self.wfile.write(payload[: max(1, len(payload) // 3)])
            self.wfile.flush()
            # RST instead of FIN: SO_LINGER with a zero timeout, then close
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            try:
                self.connection.close()
            except OSError:
                pass
            return
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo_company.server", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="generated demo directory (contains manifest.json)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file", help="write {base_url, pid, admin_token} here once listening")
    ap.add_argument("--admin-token", help="X-Demo-Admin value (default: manifest, else random)")
    ap.add_argument("--no-realism", action="store_true", help="no duplicate records across pages")
    ap.add_argument("--verbose", action="store_true", help="log requests (never auth headers) to stderr")
    args = ap.parse_args(argv)

    server = DemoServer(args.data, port=args.port, host=args.host, admin_token=args.admin_token,
                        realism=not args.no_realism, quiet=not args.verbose)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.ready_file:
        tmp = Path(args.ready_file + ".tmp")
        tmp.write_text(json.dumps({"base_url": server.base_url, "pid": os.getpid(),
                                   "admin_token": server.admin_token}), encoding="utf-8")
        os.replace(tmp, args.ready_file)
    print(server.base_url, flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
