"""HTTP client configuration shared by the HTTP extractors.

Built on dlt's retrying ``requests`` session (``dlt.sources.helpers.requests.Client``) and REST client
(``dlt.sources.helpers.rest_client.RESTClient``) with one retry policy for every vendor:

* 429 -> wait ``Retry-After`` (delta-seconds or HTTP-date); without the header, exponential backoff.
  A ``Retry-After`` above ``retry_after_cap`` (default 300 s), or a HubSpot DAILY-limit 429, fails fast with
  :class:`RateLimitedError` ("rate limited") so the orchestrator retries later.
* 5xx and connection errors -> capped exponential backoff with jitter, at most ``max_attempts`` tries.
* 400/401/403/404 -> a configuration or authorisation error (:class:`VendorConfigError`, also a
  :class:`~extractors.common.settings.ConfigurationError`): never retried, here or by the orchestrator; the message
  names the setting to fix (from the source's :class:`ConfigHints`: the credentials for 401/403, the configured id
  found in the endpoint - or the base URL - for 404) and the fix.
* other 4xx (409...) -> never retried; :class:`ExtractorHTTPError` names source, method, endpoint
  and status, plus the whitelisted structured fields of the vendor's error body (:func:`vendor_error_summary`:
  category, status, error code, correlation id - never its free text, which echoes identifiers and e-mails).
  Tokens never appear: they travel in headers only and every message is redacted.
* a 2xx page whose body is not valid JSON -> dead letter + :class:`InvalidPayloadError` (the load fails loudly,
  nothing is landed, the cursor does not move: a gap is never silently skipped).
* paginators raise :class:`CursorLoopError` when the same cursor / next link comes back twice.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import mktime_tz, parsedate_tz
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence
from urllib.parse import urlsplit

import requests
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout
from tenacity import RetryCallState, Retrying, retry_any, retry_if_exception_type, stop_after_attempt

from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.requests.retry import retry_if_status
from dlt.sources.helpers.requests.session import Session
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import AuthConfigBase
from dlt.sources.helpers.rest_client.paginators import (
    BaseNextUrlPaginator,
    JSONResponseCursorPaginator,
)

from .redact import redact_url
from .settings import ConfigurationError, Env, env_float, env_int

log = logging.getLogger("cxw.extractors.http")

RETRY_STATUS = (429, *range(500, 600))
RETRY_EXCEPTIONS = (ConnectionError, Timeout, ChunkedEncodingError)


class ExtractorHTTPError(requests.HTTPError):
    """A non-retryable (or retries exhausted) HTTP error; message is secret-free."""


class VendorConfigError(ExtractorHTTPError, ConfigurationError):
    """The vendor answered 400/401/403/404: a setting is wrong (credentials, a configured id, the base URL).
    Retrying cannot help: the HTTP policy never retries it and the DAG fails the task without Airflow retries."""

    def __init__(self, message: str, *, response: requests.Response, source: str, setting: Optional[str],
                 endpoint: str, fix: str) -> None:
        requests.HTTPError.__init__(self, message, response=response)
        self.source, self.setting, self.endpoint, self.fix = source, setting, endpoint, fix

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


CONFIG_STATUS = (400, 401, 403, 404)


@dataclass
class ConfigHints:
    """Which settings a vendor's 4xx points at (names only, never values): ``auth`` the credential settings,
    ``base_url`` the base-URL setting, ``ids`` setting name -> the ids configured in it (a 404 whose endpoint holds
    one of them names that setting)."""
    auth: Sequence[str] = ()
    base_url: Optional[str] = None
    ids: Dict[str, Sequence[str]] = field(default_factory=dict)

    def advice(self, source: str, status: int, endpoint: str) -> "tuple[Optional[str], str]":
        segments = set(endpoint.split("/"))
        in_path = [name for name, values in self.ids.items() if any(str(v) in segments for v in values or ())]
        auth = " / ".join(self.auth) or None
        if status == 401:
            return auth, (f"the vendor rejected the credentials: set valid, unexpired credentials in "
                          f"{auth or f'the CXW_{source.upper()}_* settings'}")
        if status == 403:
            setting = " / ".join([*self.auth, *in_path]) or None
            ids = f", or check {' / '.join(in_path)} (an id these credentials cannot see)" if in_path else ""
            return setting, (f"the credentials in {auth or f'the CXW_{source.upper()}_* settings'} lack access to "
                             f"{endpoint}: grant the API scope / access to the account, or use credentials that "
                             f"have it{ids}")
        names = [n for n in (in_path or [self.base_url]) if n] if status == 404 else \
            [n for n in in_path + [self.base_url] if n]
        setting = " / ".join(names) or None
        where = setting or f"the CXW_{source.upper()}_* settings"
        if status == 404:
            return setting, (f"{endpoint} does not exist at the vendor: check {where} (a configured id that does "
                             f"not exist, or a wrong base URL)")
        return setting, (f"the vendor rejected the request as malformed: check {where}; if they are right, report "
                         f"this message as an extractor defect")


class RateLimitedError(ExtractorHTTPError):
    """Rate limited beyond what we are willing to wait."""


class CursorLoopError(RuntimeError):
    """The API returned a cursor / next link that was already followed."""


class InvalidPayloadError(RuntimeError):
    """A 2xx page that is not valid JSON (dead-lettered)."""


class RateLimit:
    """Client-side limit: at most ``calls`` requests in any rolling ``period`` seconds (a sliding-window log, so
    it is never burstier than the vendor's rolling window), for request paths matching ``path_regex``.
    Parsed from text like ``"90/10s"``, ``"4/1s"``, ``"280/60s"``; ``"off"`` / ``""`` disables it."""

    def __init__(self, calls: int, period: float, path_regex: Optional[str] = None, name: str = "") -> None:
        if calls < 1 or period <= 0:
            raise ValueError(f"rate limit needs calls >= 1 and period > 0, got {calls}/{period}")
        self.calls = int(calls)
        self.period = float(period)
        self.path_re = re.compile(path_regex) if path_regex else None
        self.name = name or f"{calls}/{period:g}s"
        self._sent: Deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0          # total seconds slept (reported in logs / tests)
        self.waits = 0

    @classmethod
    def parse(cls, text: Optional[str], path_regex: Optional[str] = None, name: str = "") -> Optional["RateLimit"]:
        if text is None or text.strip().lower() in ("", "off", "none", "0"):
            return None
        m = re.match(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$", text)
        if not m:
            raise ValueError(f"rate limit {text!r} must look like 90/10s, 4/1s or 280/1m")
        unit = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0}[m.group(3)]
        return cls(int(m.group(1)), float(m.group(2)) * unit, path_regex, name)

    def applies(self, path: str) -> bool:
        return self.path_re is None or bool(self.path_re.search(path))

    def acquire(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        """Block until one more request fits in the window; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = clock()
                while self._sent and now - self._sent[0] >= self.period:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    if waited:
                        self.waited += waited
                        self.waits += 1
                    return waited
                delay = self._sent[0] + self.period - now
            delay = max(delay, 0.001)
            sleep(delay)
            waited += delay


@dataclass
class HttpConfig:
    timeout: float = 30.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_cap: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)   # injectable for tests
    clock: Callable[[], float] = field(default=time.time, repr=False)       # "now" for HTTP-date Retry-After
    # client-side rate limits (set per vendor by its settings; every attempt, retries included, takes a slot)
    rate_limits: List[RateLimit] = field(default_factory=list, repr=False)

    @classmethod
    def from_env(cls, env: Env = None) -> "HttpConfig":
        return cls(
            timeout=env_float("CXW_HTTP_TIMEOUT", 30.0, env=env),
            max_attempts=env_int("CXW_HTTP_MAX_ATTEMPTS", 6, env=env),
            backoff_base=env_float("CXW_HTTP_BACKOFF_BASE", 1.0, env=env),
            backoff_max=env_float("CXW_HTTP_BACKOFF_MAX", 60.0, env=env),
            retry_after_cap=env_float("CXW_HTTP_RETRY_AFTER_CAP", 300.0, env=env),
        )


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, mktime_tz(parsed) - (now if now is not None else time.time()))


def _response_of(retry_state: RetryCallState) -> Optional[requests.Response]:
    outcome = retry_state.outcome
    if outcome is None:
        return None
    exc = outcome.exception()
    if exc is not None:
        return getattr(exc, "response", None)
    result = outcome.result()
    return result if isinstance(result, requests.Response) else None


class RetryAfterWait:
    """tenacity wait: Retry-After (capped -> fail fast) or capped exponential backoff with full jitter."""

    def __init__(self, source: str, cfg: HttpConfig) -> None:
        self.source = source
        self.cfg = cfg

    def __call__(self, retry_state: RetryCallState) -> float:
        response = _response_of(retry_state)
        if response is not None and response.status_code == 429:
            endpoint = urlsplit(response.url or "").path
            body = (response.text or "")[:500]
            if '"DAILY"' in body:
                raise RateLimitedError(
                    f"{self.source}: rate limited (daily limit reached) on {response.request.method} {endpoint}; "
                    "retry after the limit resets", response=response)
            delay = parse_retry_after(response.headers.get("Retry-After"), now=self.cfg.clock())
            if delay is not None:
                if delay > self.cfg.retry_after_cap:
                    raise RateLimitedError(
                        f"{self.source}: rate limited on {response.request.method} {endpoint}: Retry-After "
                        f"{delay:.0f}s exceeds the cap of {self.cfg.retry_after_cap:.0f}s; failing fast",
                        response=response)
                log.warning("%s: HTTP 429 on %s, honouring Retry-After %.1fs", self.source, endpoint, delay)
                return delay
        attempt = max(1, retry_state.attempt_number)
        ceiling = min(self.cfg.backoff_max, self.cfg.backoff_base * (2 ** (attempt - 1)))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        status = response.status_code if response is not None else "connection error"
        log.warning("%s: attempt %d failed (%s), backing off %.2fs", self.source, attempt, status, delay)
        return delay


# dlt's Client.__init__ without its config injection (``with_config`` keeps the original as ``__wrapped__``)
_CLIENT_INIT = getattr(Client.__init__, "__wrapped__", Client.__init__)


class RetryingClient(Client):
    """dlt's retrying requests Client with the project retry policy (see module docstring)."""

    def __init__(self, source: str, cfg: HttpConfig) -> None:
        # dlt wraps Client.__init__ in `with_config(spec=RuntimeConfiguration)`: every client built resolves dlt's
        # runtime configuration through every config provider, and inside an Airflow task that includes dlt's
        # Airflow-Variables provider - 19 `Variable.get` round trips through the task supervisor to the API server
        # per client (0.4-1.3 s of a no-op extract task, docs/DECISIONLOG.md 2026-12-07). Every value this client
        # uses comes from HttpConfig (CXW_HTTP_*), and the retry policy is ours (_make_session), so dlt's own
        # __init__ is called without the injection: no dlt configuration is read.
        _CLIENT_INIT(self, request_timeout=cfg.timeout, raise_for_status=False,
                     request_max_attempts=cfg.max_attempts, status_codes=RETRY_STATUS,
                     exceptions=RETRY_EXCEPTIONS)
        self.source = source
        self.cfg = cfg

    def _make_session(self) -> Session:
        session = Session(**self._session_kwargs)  # type: ignore[arg-type]
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        retry = Retrying(
            wait=RetryAfterWait(self.source, self.cfg),
            retry=retry_any(retry_if_status(RETRY_STATUS), retry_if_exception_type(RETRY_EXCEPTIONS)),
            stop=stop_after_attempt(self.cfg.max_attempts),
            sleep=self.cfg.sleep,
            reraise=True,
        )
        send = original_send = session.send
        limits = list(self.cfg.rate_limits)
        if limits:
            cfg, source = self.cfg, self.source

            def limited_send(request, **kwargs):
                path = urlsplit(request.url or "").path
                for limit in limits:
                    if limit.applies(path):
                        waited = limit.acquire(cfg.clock, cfg.sleep)
                        if waited:
                            log.debug("%s: client rate limit %s: waited %.2fs", source, limit.name, waited)
                return original_send(request, **kwargs)

            send = limited_send
        session.send = retry.wraps(send)  # type: ignore[method-assign]
        return session


# The structured fields of the vendors' error bodies that are safe in a log (docs/source-formats.md, SERVER.md):
# enumerations, numeric codes and request ids. Free text ("message", "faultstring", "Error", "details") is never
# kept: vendors echo the request's values in it ("Contact already exists. Existing ID: 12345", an e-mail in a
# validation error, a review's resource name).
VENDOR_ERROR_FIELDS = (
    ("status",), ("category",), ("subCategory",), ("errorType",), ("policyName",), ("correlationId",),  # HubSpot
    ("requestId",),
    ("error", "code"), ("error", "status"),                                                             # Google
    ("errorCode",), ("ErrorCode",), ("fault", "detail", "errorcode"),                                   # Trustpilot
)
_SAFE_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,79}$|^[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}$")


def vendor_error_summary(response: requests.Response, secrets: Sequence[str] = ()) -> str:
    """What of a 4xx/5xx body may go into an error message: the whitelisted structured fields of a JSON error body
    (``vendor error: category=CONFLICT, correlationId=…``), each only when it looks like an enumeration, a number or
    a request id; of any other body only its size and content type. Never the vendor's free text, never a value
    the request carried (the body stays on ``exc.response`` for a debugger, not in the message)."""
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip() or "no content type"
    size = len(response.content or b"")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"vendor error body not JSON ({size} bytes, {content_type}) - not shown" if size else \
            "empty vendor error body"
    kept = []
    for path in VENDOR_ERROR_FIELDS:
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) or (isinstance(value, str) and _SAFE_TOKEN.match(value)
                                      and not any(s and s in value for s in secrets)):
            kept.append(f"{'.'.join(path)}={value}")
    return ("vendor error: " + ", ".join(kept)) if kept else \
        f"vendor error body without known structured fields ({size} bytes, {content_type}) - not shown"


class ResponseChecker:
    """requests 'response' hook: raise secret-free errors for 4xx/5xx, dead-letter invalid JSON."""

    def __init__(self, source: str, secrets: Sequence[str], hints: Optional[ConfigHints] = None) -> None:
        self.source = source
        self.secrets = [s for s in secrets if s]
        self.hints = hints or ConfigHints()
        self.deadletters = None  # set per load: a DeadLetterStore

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        method = response.request.method if response.request is not None else "?"
        endpoint = urlsplit(response.url or "").path
        if response.status_code >= 400:
            cls = ExtractorHTTPError
            msg = (f"{self.source}: {method} {endpoint} failed with HTTP {response.status_code} "
                   f"{response.reason or ''}".rstrip())
            if response.status_code == 429:
                msg += " (rate limited)"
            msg += f"; {vendor_error_summary(response, self.secrets)}"
            if response.status_code in CONFIG_STATUS:
                setting, fix = self.hints.advice(self.source, response.status_code, endpoint)
                msg += f"; configuration error, not retried - setting: {setting or 'unknown'}; fix: {fix}"
                raise VendorConfigError(msg, response=response, source=self.source, setting=setting,
                                        endpoint=f"{method} {endpoint}", fix=fix)
            raise cls(msg, response=response)
        if response.status_code == 204 or not response.content:
            return response
        try:
            parsed = response.json()
        except ValueError as exc:
            path = None
            if self.deadletters is not None:
                body = None
                if response.request is not None and response.request.body:
                    b = response.request.body
                    body = b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)
                path = self.deadletters.write(
                    f"invalid JSON page: {exc}", method=method, url=response.url,
                    status=response.status_code, payload=response.text, request_body=body)
            raise InvalidPayloadError(
                f"{self.source}: {method} {endpoint} returned HTTP {response.status_code} with a body that is not "
                f"valid JSON ({exc}); dead letter: {path}; the load is failed so no gap is skipped") from None
        response.json = lambda *a, **k: parsed  # type: ignore[method-assign]  # parse once
        return response


class _PathOnlyRESTClient(RESTClient):
    """dlt's RESTClient, but its request log names method and path only: at DEBUG dlt logs the query parameters and
    JSON body (HubSpot association inputs are object ids, list cursors are ids, search filters hold values)."""

    def _log_request(self, request, prepared_url: str) -> None:
        log.debug("%s %s", request.method.upper(), urlsplit(prepared_url or "").path)


class _PathOnlyUrllib3Log(logging.Filter):
    """urllib3's DEBUG line ``'http://host:port "GET /path?query HTTP/1.1" 200 123'`` without the query (a
    cursor, a page token or a search value)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5 and isinstance(args[4], str) and "?" in args[4]:
            record.args = (*args[:4], args[4].split("?", 1)[0] + "?[query not logged]", *args[5:])
        return True


if not any(isinstance(f, _PathOnlyUrllib3Log) for f in logging.getLogger("urllib3.connectionpool").filters):
    logging.getLogger("urllib3.connectionpool").addFilter(_PathOnlyUrllib3Log())


def make_rest_client(source: str, base_url: str, cfg: HttpConfig, *, auth: Optional[AuthConfigBase] = None,
                     headers: Optional[Dict[str, str]] = None, secrets: Sequence[str] = (),
                     rate_limits: Optional[Sequence[RateLimit]] = None,
                     hints: Optional[ConfigHints] = None) -> "SourceClient":
    if rate_limits is not None:
        import dataclasses
        cfg = dataclasses.replace(cfg, rate_limits=list(cfg.rate_limits) + list(rate_limits))
    client = RetryingClient(source, cfg)
    # config given: dlt's RESTClient would otherwise resolve its RuntimeConfiguration (only its HTTP error-body
    # settings are read, and our ResponseChecker raises first), and the first resolution in a process initialises
    # dlt's runtime (its logging, telemetry) - dlt's defaults are what it would resolve to, as we set no dlt config
    rest = _PathOnlyRESTClient(base_url=base_url, headers=headers, auth=auth, session=client.session,
                               config=RuntimeConfiguration())
    return SourceClient(rest, ResponseChecker(source, secrets, hints))


class SourceClient:
    """A RESTClient plus the response checker; ``paginate`` / ``request`` always install the checker."""

    def __init__(self, rest: RESTClient, checker: ResponseChecker) -> None:
        self.rest = rest
        self.checker = checker

    def set_deadletters(self, store) -> None:
        self.checker.deadletters = store

    def paginate(self, path: str, **kwargs: Any):
        return self.rest.paginate(path, hooks={"response": [self.checker]}, **kwargs)

    def request(self, path: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        return self.rest.request(path, method=method, hooks={"response": [self.checker]}, **kwargs)


class _LoopGuard:
    def _guard(self, ref: Optional[str], what: str) -> None:
        if ref is None:
            return
        seen = self.__dict__.setdefault("_seen_refs", set())
        if ref in seen:
            # the cursor / link itself is not named: it is an object id (HubSpot `after`), or a URL whose query
            # may carry one - an identifier never goes into a message
            raise CursorLoopError(f"pagination loop: the API returned the same {what} twice (after "
                                  f"{len(seen)} distinct ones); failing instead of looping forever")
        seen.add(ref)


class CursorPaginator(_LoopGuard, JSONResponseCursorPaginator):
    """JSON cursor paginator (HubSpot ``paging.next.after``, Google ``nextPageToken``, HubSpot email
    ``offset``+``hasMore``) that fails on a repeated cursor."""

    def update_state(self, response: requests.Response, data: Optional[List[Any]] = None) -> None:
        super().update_state(response, data)
        if self.has_next_page:
            self._guard(str(self._next_reference), "cursor")


class LinkRelPaginator(_LoopGuard, BaseNextUrlPaginator):
    """Follows ``links[rel=<rel>].href`` in the JSON body (Trustpilot), failing on a repeated link."""

    def __init__(self, rel: str = "next-page", links_key: str = "links") -> None:
        super().__init__()
        self.rel = rel
        self.links_key = links_key

    def update_state(self, response: requests.Response, data: Optional[List[Any]] = None) -> None:
        body = response.json()
        href = None
        for link in (body.get(self.links_key) or []) if isinstance(body, dict) else []:
            if isinstance(link, dict) and link.get("rel") == self.rel and link.get("href"):
                href = link["href"]
                break
        self._next_reference = href
        if href is not None:
            self._guard(href, "next-page link")


def vendor_limits(source: str, defaults: Dict[str, Any], env: Env = None) -> List[RateLimit]:
    """Rate limits of a vendor: ``defaults`` maps an env suffix to ``(text, path_regex)``; each can be overridden
    by ``CXW_<SOURCE>_<SUFFIX>`` (e.g. ``CXW_HUBSPOT_RATE_LIMIT=90/10s``, ``off`` disables one)."""
    import os
    out = []
    for suffix, (text, regex) in defaults.items():
        name = f"CXW_{source.upper()}_{suffix}"
        value = (os.environ if env is None else env).get(name, text)
        limit = RateLimit.parse(value, regex, name=f"{source}:{suffix.lower()}={value}")
        if limit is not None:
            out.append(limit)
    return out


@dataclass(kw_only=True)
class HttpSourceSettings:
    """The settings every HTTP source shares (HubSpot, Google reviews, Trustpilot; GA4 reads files, not an API):
    the API's base URL (``CXW_<SOURCE>_BASE_URL``, the source's ``DEFAULT_BASE_URL`` when unset), the HTTP
    timeouts and retries (``HttpConfig``: ``CXW_HTTP_*``), the client-side rate limits (``vendor_limits``:
    ``CXW_<SOURCE>_*RATE_LIMIT``) and the history start (``CXW_HISTORY_START``). A source's settings class
    subclasses it (keyword-only fields), adds its credentials and vendor knobs, and sets the defaults of
    ``base_url`` and ``rate_limits``; its ``from_env(env)`` reads them all (``HttpConfig.from_env(env)``, ...).
    Which Airflow connection field fills which variable is the source's ``CONNECTION_FIELDS``."""

    base_url: str = ""
    history_start: Optional[datetime] = None
    http: HttpConfig = field(default_factory=HttpConfig)
    rate_limits: List[RateLimit] = field(default_factory=list)   # client-side limits below the vendor's; [] = none


__all__ = [
    "RateLimit", "vendor_limits", "HttpSourceSettings",
    "HttpConfig", "ExtractorHTTPError", "VendorConfigError", "ConfigHints", "RateLimitedError", "CursorLoopError",
    "InvalidPayloadError",
    "RetryingClient", "make_rest_client", "SourceClient", "CursorPaginator", "LinkRelPaginator",
    "parse_retry_after", "redact_url",
]
