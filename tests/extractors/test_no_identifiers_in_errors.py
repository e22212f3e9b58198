"""No record value or identifier reaches an error message or a log line (issue 15 point 4): vendors echo the request's
values in their error bodies ("Contact already exists. Existing ID: 9137451", an e-mail in a validation error) and
cursors are object ids. The real extractors run against the real loopback DemoServer (and, for a body that is not
JSON, a loopback server answering an HTML error page); every planted string must be absent from the exception text,
from every log line at DEBUG (caplog plus handlers on dlt / urllib3 / requests, which Airflow's logging config may
stop propagating) and from stderr, while the status code and the vendor's structured error category are there."""
from __future__ import annotations

import http.server
import logging
import threading
from urllib.parse import parse_qsl

import pytest

from conftest import run_kwargs
from demo_company import server_reviews
from extractors import google_reviews, hubspot, trustpilot
from extractors.common.http import CursorLoopError, ExtractorHTTPError, make_rest_client
from extractors.hubspot.helpers import read_associations
from test_hubspot_extract import contacts_via, settings as hs_settings
from test_reviews_extract import g_settings, t_settings
from test_secrets_extract import capture  # noqa: F401 - fixture: DEBUG on every logger, attached directly

PLANTED_EMAIL = "jane.planted@example.org"
PLANTED_PHONE = "+49 170 5550199"
PLANTED_ID = "9137451"
PLANTED = (PLANTED_EMAIL, PLANTED_PHONE, PLANTED_ID, "Existing ID")
MESSAGE = f"Contact already exists. Existing ID: {PLANTED_ID} ({PLANTED_EMAIL}, phone {PLANTED_PHONE})"


def _leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def _all_output(exc, capture, caplog, capfd) -> str:
    out, err = capfd.readouterr()
    return "\n".join([str(exc), repr(exc), "\n".join(capture.lines), caplog.text, out, err])


# (vendor, status, path prefix of the fault, extract, settings factory, structured field the message must keep)
CASES = {
    "hubspot-409-list": ("hubspot", 409, "/crm/v3/objects/contacts", "GET",
                         lambda s, c: contacts_via(s, c, "list"), "category=CONFLICT"),
    "hubspot-400-search": ("hubspot", 400, "/crm/v3/objects/contacts/search", "POST",
                           lambda s, c: contacts_via(s, c, "search"), "category=VALIDATION_ERROR"),
    "hubspot-500-retried": ("hubspot", 500, "/crm/v3/objects/contacts", "GET",
                            lambda s, c: contacts_via(s, c, "list"), "category=INTERNAL_ERROR"),
    "google-404": ("google_reviews", 404, "/v4/accounts/", None, g_settings,
                   f"error.status={server_reviews.google_error_body(404)['error']['status']}"),
    "trustpilot-400": ("trustpilot", 400, "/v1/private/", None, t_settings, "errorCode=400"),
    "trustpilot-401-gateway": ("trustpilot", 401, "/v1/private/", None, t_settings,
                               "fault.detail.errorcode=oauth.v2.InvalidApiKey"),
}
MODULES = {"hubspot": hubspot, "google_reviews": google_reviews, "trustpilot": trustpilot}


@pytest.mark.parametrize("case", list(CASES))
def test_vendor_error_body_values_never_reach_the_exception_logs_or_stderr(case, server, clock, dirs, capture,
                                                                           caplog, capfd):
    vendor, status, prefix, method, make_settings, structured = CASES[case]
    caplog.set_level(logging.DEBUG)
    # every attempt gets the planted body (a 5xx is retried max_attempts times, then fails)
    server.inject_faults(prefix, [{"status": status, "message": MESSAGE}] * 8, method=method)
    with pytest.raises(ExtractorHTTPError) as ei:
        MODULES[vendor].extract(settings=make_settings(server, clock), **run_kwargs(dirs))
    assert ei.value.response is not None and PLANTED_ID in ei.value.response.text  # the vendor did echo them
    text = _all_output(ei.value, capture, caplog, capfd)
    assert _leaks(text) == [], (_leaks(text), str(ei.value))
    msg = str(ei.value)
    assert f"HTTP {status}" in msg and structured in msg, msg
    assert vendor in msg


class _HtmlErrorPage(http.server.BaseHTTPRequestHandler):
    """A proxy in front of the vendor answering 502 with an HTML page that quotes the request."""

    def _answer(self) -> None:
        body = (f"<html><body><h1>502 Bad Gateway</h1><p>upstream said: {MESSAGE}</p></body></html>").encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *a) -> None:  # quiet
        pass


def test_non_json_error_body_is_reported_by_size_and_type_only(clock, dirs, server, capture, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlErrorPage)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        s = hs_settings(server, clock, objects=["contacts"], association_pairs=[], include_email_events=False,
                        base_url=f"http://127.0.0.1:{srv.server_address[1]}")
        with pytest.raises(ExtractorHTTPError) as ei:
            hubspot.extract(settings=s, **run_kwargs(dirs))
    finally:
        srv.shutdown()
        srv.server_close()
    text = _all_output(ei.value, capture, caplog, capfd)
    assert _leaks(text) == [], (_leaks(text), str(ei.value))
    msg = str(ei.value)
    assert "HTTP 502" in msg and "not JSON" in msg and "text/html" in msg, msg


def test_cursor_loop_error_names_no_cursor_or_link(server, clock, dirs, capture, caplog, capfd):
    """HubSpot list cursors are object ids (`after`), Trustpilot's next-page link is a URL with a query: the loop
    error says what looped, never the value; neither do the request logs (dlt, urllib3) at DEBUG."""
    caplog.set_level(logging.DEBUG)
    server.inject_faults("/crm/v3/objects/contacts", [{"delay": 0}, {"repeat_cursor": True}], method="GET")
    with pytest.raises(CursorLoopError) as ei:
        hubspot.extract(settings=contacts_via(server, clock, "list", page=20), **run_kwargs(dirs))
    cursors = {v for e in server.request_log() if e["path"] == "/crm/v3/objects/contacts"
               for k, v in parse_qsl(e["query"]) if k == "after"}
    assert cursors, "the list was never paged"
    server.inject_faults("/v1/private/", [{"repeat_cursor": True}, {"repeat_cursor": True}])
    with pytest.raises(CursorLoopError) as ti:
        trustpilot.extract(settings=t_settings(server, clock, per_page=2), **run_kwargs(dirs))
    queries = {e["query"] for e in server.request_log() if e["path"].startswith("/v1/private/") and e["query"]}
    text = _all_output(ei.value, capture, caplog, capfd) + str(ti.value)
    leaked = [c for c in cursors if f"after={c}" in text or repr(c) in text or f"({c}" in text]
    assert leaked == [], (leaked, str(ei.value))
    assert not [q for q in queries if q in text]
    assert "same cursor twice" in str(ei.value) and "next-page link twice" in str(ti.value)


def test_association_paging_loop_names_no_object_id(server, clock, capture, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    from_id = "77001234"
    body = {"status": "COMPLETE", "results": [{"from": {"id": from_id}, "to": [{"toObjectId": 5, "associationTypes": [
        {"typeId": 4, "label": None, "category": "HUBSPOT_DEFINED"}]}], "paging": {"next": {"after": "LOOP"}}}]}

    class Looping(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            import json
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Looping)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = hs_settings(server, clock, base_url=f"http://127.0.0.1:{srv.server_address[1]}")
        client = make_rest_client("hubspot", s.base_url, s.http, secrets=[s.token])
        with pytest.raises(CursorLoopError) as ei:
            read_associations(client, s, "contacts", "deals", [from_id])
    finally:
        srv.shutdown()
        srv.server_close()
    text = _all_output(ei.value, capture, caplog, capfd)
    assert from_id not in text, str(ei.value)
    assert "association paging loop" in str(ei.value) and "contacts -> deals" in str(ei.value)
