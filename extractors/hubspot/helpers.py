"""HubSpot helpers: windowed search with the 10k cap, the CRM v3 list for first runs, v4 association batch
reads, v1 email events."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pyarrow as pa

from extractors.common.http import CursorPaginator, SourceClient
from extractors.common.records import flatten, rows_to_table

from .settings import (ASSOCIATIONS_PATH, CURSOR_PROPERTY, EMAIL_EVENTS_PATH,
                       LIST_PATH, RECORD_COLUMNS, SEARCH_PATH, HubspotSettings)

log = logging.getLogger("cxw.extractors.hubspot")


def to_ms(dt: datetime) -> int:
    return int(dt.astimezone(timezone.utc).timestamp() * 1000)


_NUM_RE = re.compile(r"^-?\d+(\.\d+)?$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_FRACTION_RE = re.compile(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$")


def _parse_iso_ms(text: str) -> Optional[int]:
    if not _ISO_RE.match(text):
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = _FRACTION_RE.match(text)  # Python < 3.11 reads at most 6 fractional digits
    if m:
        text = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


def iso_to_ms(value: Any) -> Optional[int]:
    """A date property value as epoch ms, the way the search API compares it in a range filter: numeric text
    (epoch ms) as a number, ISO-8601 / RFC 3339 text (``2025-03-01T10:00:00.123Z``, a bare date = midnight UTC)
    rounded to the ms; anything else (``2025-02-30T25:61:00Z``, empty, missing) is None — such a record never
    matches a range filter, so callers filtering locally (:func:`list_object`) must drop it too."""
    if value is None or isinstance(value, bool):
        return None
    raw = str(value)
    text = raw.strip()
    if _NUM_RE.match(text):
        num = float(text)
        return int(num) if num.is_integer() else num  # type: ignore[return-value]
    ms = _parse_iso_ms(raw)
    if ms is None and len(text) == 10:
        ms = _parse_iso_ms(text + "T00:00:00Z")
    return ms


class SearchStats:
    """Per-object read counters (search and list); they go to the load's ``_load.json``."""

    def __init__(self) -> None:
        self.requests = 0           # search requests
        self.cap_restarts = 0
        self.same_ts_passes = 0
        self.list_requests = 0      # list (GET /crm/v3/objects/{obj}) pages
        self.list_repeats = 0       # records dropped because this listing had already yielded their id
        self.list_outside = 0       # listed records dropped: cursor property outside [start, end) or unparseable
        self.outside_ids: List[str] = []   # their ids (the association pass needs every record a listing saw)


def _search_pages(client: SourceClient, path: str, body: Dict[str, Any], page_size: int, cap: int,
                  stats: SearchStats) -> Iterator[Tuple[List[Dict[str, Any]], bool]]:
    """Yield (records, capped) per page; ``capped`` is True on the last page before the result cap."""
    paginator = CursorPaginator(cursor_path="paging.next.after", cursor_body_path="after")
    for page in client.paginate(path, method="POST", json=dict(body), paginator=paginator,
                                data_selector="results"):
        stats.requests += 1
        records = list(page)
        nxt = paginator._next_reference if paginator.has_next_page else None
        capped = nxt is not None and int(nxt) + page_size > cap
        yield records, capped
        if capped:
            return


def search_object(client: SourceClient, settings: HubspotSettings, obj: str, start: datetime, end: datetime,
                  stats: SearchStats) -> Iterator[List[Dict[str, Any]]]:
    """All records of ``obj`` with ``start <= lastmodified < end``, ascending.

    The search API stops at 10,000 results per query. When a query reaches the cap we (1) read every record
    carrying the last seen timestamp T with a second query ``lastmodified EQ T`` sorted by ``hs_object_id``,
    restarting with ``hs_object_id GT <last id>`` whenever that query hits the cap too (bulk updates can give
    more than 10k records one timestamp), then (2) continue the window with ``lastmodified GT T``.
    Records of T already emitted by the first query are not emitted twice.
    """
    prop = CURSOR_PROPERTY[obj]
    path = SEARCH_PATH.format(object=obj)
    props = settings.properties[obj]
    end_ms = to_ms(end)
    lo, lo_op = to_ms(start), "GTE"
    while True:
        body = {
            "filterGroups": [{"filters": [
                {"propertyName": prop, "operator": lo_op, "value": str(lo)},
                {"propertyName": prop, "operator": "LT", "value": str(end_ms)},
            ]}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": props,
            "limit": settings.page_size,
        }
        last_ts: Optional[int] = None
        ids_at_last: Set[str] = set()
        capped = False
        for records, capped in _search_pages(client, path, body, settings.page_size, settings.search_cap, stats):
            for r in records:
                ts = iso_to_ms((r.get("properties") or {}).get(prop))
                if ts is not None:
                    if ts != last_ts:
                        last_ts, ids_at_last = ts, set()
                    ids_at_last.add(str(r.get("id")))
            yield records
        if not capped:
            return
        if last_ts is None:
            raise RuntimeError(f"hubspot: {obj} search hit the result cap but no record carried {prop}")
        stats.cap_restarts += 1
        log.info("hubspot.%s: search cap reached at %s=%d; reading that timestamp by hs_object_id", obj, prop,
                 last_ts)
        yield from _same_timestamp(client, settings, obj, prop, path, props, last_ts, ids_at_last, stats)
        lo, lo_op = last_ts, "GT"


def _same_timestamp(client: SourceClient, settings: HubspotSettings, obj: str, prop: str, path: str,
                    props: Sequence[str], ts: int, already: Set[str], stats: SearchStats
                    ) -> Iterator[List[Dict[str, Any]]]:
    last_id: Optional[str] = None
    while True:
        stats.same_ts_passes += 1
        filters = [{"propertyName": prop, "operator": "EQ", "value": str(ts)}]
        if last_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})
        body = {"filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": list(props), "limit": settings.page_size}
        capped = False
        progressed = False
        for records, capped in _search_pages(client, path, body, settings.page_size, settings.search_cap, stats):
            out = []
            for r in records:
                rid = r.get("id")
                if rid is not None and str(rid).isdigit():
                    if last_id is None or int(rid) > int(last_id):
                        last_id, progressed = str(rid), True
                if str(rid) in already:
                    continue
                out.append(r)
            if out:
                yield out
        if not capped:
            return
        if not progressed:
            raise RuntimeError(f"hubspot: {obj} same-timestamp paging made no progress at {prop}={ts}")


def list_object(client: SourceClient, settings: HubspotSettings, obj: str, start: datetime, end: datetime,
                stats: SearchStats) -> Iterator[List[Dict[str, Any]]]:
    """Pages of the non-archived records of ``obj`` with ``start <= cursorprop < end``, read through the list
    endpoint ``GET /crm/v3/objects/{obj}?limit=100&after=…&properties=…`` (id order) and filtered here.

    The same set :func:`search_object` returns for that window, in id order instead of last-modified order:
    a record whose cursor property is missing or unparseable is dropped (search never matches it in a range
    filter; :func:`iso_to_ms` compares as search does). Used for first runs over the whole history: the list is
    only under the general limit (100 records per request, no 5/s search limit and no 10,000-result cap).
    A record listed again (its id already yielded by this listing: a record inserted while paging shifts the
    next page by one) is dropped and counted in ``stats.list_repeats``."""
    prop = CURSOR_PROPERTY[obj]
    lo, hi = to_ms(start), to_ms(end)
    params = {"limit": settings.list_page_size, "properties": ",".join(settings.properties[obj])}
    paginator = CursorPaginator(cursor_path="paging.next.after", cursor_param="after")
    seen: Set[str] = set()
    for page in client.paginate(LIST_PATH.format(object=obj), method="GET", params=params, paginator=paginator,
                                data_selector="results"):
        stats.list_requests += 1
        out: List[Dict[str, Any]] = []
        for r in page:
            rid = r.get("id")
            if rid is not None:
                key = str(rid)
                if key in seen:
                    stats.list_repeats += 1
                    continue
                seen.add(key)
            ts = iso_to_ms((r.get("properties") or {}).get(prop))
            if ts is None or not lo <= ts < hi:
                stats.list_outside += 1
                if rid is not None:
                    stats.outside_ids.append(str(rid))
                continue
            out.append(r)
        yield out


def archived_pages(client: SourceClient, settings: HubspotSettings, obj: str) -> Iterator[List[Dict[str, Any]]]:
    """Every archived record of ``obj``: ``GET /crm/v3/objects/{obj}?archived=true&limit=100&properties=…``,
    paged by ``paging.next.after`` (the search API never returns archived records)."""
    params = {"archived": "true", "limit": settings.list_page_size, "properties": ",".join(settings.properties[obj])}
    paginator = CursorPaginator(cursor_path="paging.next.after", cursor_param="after")
    for page in client.paginate(LIST_PATH.format(object=obj), method="GET", params=params, paginator=paginator,
                                data_selector="results"):
        yield list(page)


def record_columns(settings: HubspotSettings, obj: str) -> List[str]:
    return RECORD_COLUMNS + [f"properties__{p}" for p in settings.properties[obj]]


def records_to_table(settings: HubspotSettings, obj: str, rows: List[Dict[str, Any]]) -> pa.Table:
    flat = [flatten(r, max_depth=2, json_keys=("associations", "propertiesWithHistory")) for r in rows]
    cols = record_columns(settings, obj)
    strings = [c for c in cols if c.startswith("properties__")] + ["id"]
    strings += sorted({k for f in flat for k in f if k.startswith("properties__")})
    return rows_to_table(flat, cols, string_columns=strings)


def read_associations(client: SourceClient, settings: HubspotSettings, from_type: str, to_type: str,
                      ids: Sequence[str], requests: Optional[Dict[str, int]] = None) -> List[Dict[str, Any]]:
    """Every ``from_type -> to_type`` association of ``ids`` (v4 batch read, paging per object). ``requests``:
    counts the batch requests made under ``"<from>-><to>"``."""
    path = ASSOCIATIONS_PATH.format(from_type=from_type, to_type=to_type)
    rows: List[Dict[str, Any]] = []
    unique = list(dict.fromkeys(i for i in ids if i is not None))
    pending: List[Dict[str, Any]] = [{"id": i} for i in unique]
    seen_after: Set[Tuple[str, str]] = set()
    while pending:
        batch, pending = pending[:settings.association_batch_size], pending[settings.association_batch_size:]
        resp = client.request(path, method="POST", json={"inputs": batch})
        if requests is not None:
            key = f"{from_type}->{to_type}"
            requests[key] = requests.get(key, 0) + 1
        body = resp.json()
        for result in body.get("results") or []:
            from_id = str((result.get("from") or {}).get("id"))
            for to in result.get("to") or []:
                types = to.get("associationTypes") or [{}]
                for t in types:
                    rows.append({
                        "from_type": from_type, "from_id": from_id, "to_type": to_type,
                        "to_id": None if to.get("toObjectId") is None else str(to.get("toObjectId")),
                        "type_id": None if t.get("typeId") is None else int(t.get("typeId")),
                        "label": t.get("label"), "category": t.get("category"),
                    })
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            if after:
                key = (from_id, str(after))
                if key in seen_after:
                    from extractors.common.http import CursorLoopError
                    raise CursorLoopError(f"hubspot: association paging loop ({from_type} -> {to_type}): the same "
                                          "paging cursor came back for one object; failing instead of looping "
                                          "forever")  # the object id is an identifier: never in a message
                seen_after.add(key)
                pending.append({"id": from_id, "after": str(after)})
    return rows


def associations_table(rows: List[Dict[str, Any]]) -> pa.Table:
    schema = pa.schema([("from_type", pa.string()), ("from_id", pa.string()), ("to_type", pa.string()),
                        ("to_id", pa.string()), ("type_id", pa.int64()), ("label", pa.string()),
                        ("category", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def email_event_pages(client: SourceClient, settings: HubspotSettings, start: datetime, end: datetime
                      ) -> Iterator[List[Dict[str, Any]]]:
    """``GET /email/public/v1/events`` for ``start <= created < end`` (endTimestamp = end - 1 ms, HubSpot's
    bounds are inclusive), looping while ``hasMore``."""
    params = {"startTimestamp": to_ms(start), "endTimestamp": to_ms(end) - 1,
              "limit": settings.email_events_page_size}
    paginator = CursorPaginator(cursor_path="offset", cursor_param="offset", has_more_path="hasMore")
    for page in client.paginate(EMAIL_EVENTS_PATH, method="GET", params=params, paginator=paginator,
                                data_selector="events"):
        yield list(page)


EMAIL_EVENT_COLUMNS = ["id", "created", "type", "recipient", "portalId", "appId", "appName", "emailCampaignId"]


def email_events_table(rows: List[Dict[str, Any]]) -> pa.Table:
    flat = [flatten(r, max_depth=1) for r in rows]
    return rows_to_table(flat, EMAIL_EVENT_COLUMNS, string_columns=["id", "type", "recipient", "appName"])
