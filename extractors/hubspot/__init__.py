"""HubSpot CRM extractor (list/search v3, associations v4, email events v1) -> raw/hubspot/<object>/.

Entry point: :func:`extract` (raw landing contract, extractors/README.md).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Optional

from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from extractors.common.http import ConfigHints, make_rest_client
from extractors.common.runner import EPOCH, EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .assoc import read_back_ids, read_pairs
from .helpers import (SearchStats, archived_pages, associations_table, email_event_pages, email_events_table,
                      list_object, read_associations, records_to_table, search_object)
from .settings import SOURCE, HubspotSettings

log = logging.getLogger("cxw.extractors.hubspot")

__all__ = ["extract", "HubspotSettings"]


def _client(settings: HubspotSettings):
    return make_rest_client(SOURCE, settings.base_url, settings.http, auth=BearerTokenAuth(settings.token),
                            secrets=[settings.token],
                            rate_limits=settings.rate_limits,
                            hints=ConfigHints(auth=["CXW_HUBSPOT_TOKEN"], base_url="CXW_HUBSPOT_BASE_URL"))


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[HubspotSettings] = None) -> Dict[str, Any]:
    settings = settings or HubspotSettings.from_env()
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env(), secrets=[settings.token])
    client = _client(settings)
    extracted_ids: Dict[str, List[str]] = {}
    from_types = {f for f, _ in settings.association_pairs}
    listed_outside: Dict[str, List[str]] = {}   # objects listed over their whole history: ids seen but not landed

    for obj in settings.objects:
        win = run.window(obj, settings.lookback, unbounded_first_run=True)
        stats = SearchStats()
        # a first run over the whole history lists every record (100 per request under the general limit)
        # and keeps those before the window end; deltas and backfills search by last-modified date
        via_list = settings.history_via_list and win.full_history and win.start == EPOCH
        read = list_object if via_list else search_object
        with run.load(obj, client=client) as ctx:
            rows: List[Dict[str, Any]] = []
            for page in read(client, settings, obj, win.start, win.end, stats):
                rows.extend(page)
            ids = [None if r.get("id") is None else str(r.get("id")) for r in rows]
            extracted_ids[obj] = [i for i in ids if i is not None]
            meta: Dict[str, Any] = {"read_via": "list" if via_list else "search", "search_requests": stats.requests,
                                    "search_cap_restarts": stats.cap_restarts}
            if via_list:
                listed_outside[obj] = stats.outside_ids
                meta.update(list_requests=stats.list_requests, list_repeats=stats.list_repeats,
                            list_outside_window=stats.list_outside)
            # the ids whose associations are owed are recorded in the same state commit as the object's cursor
            owed = extracted_ids[obj] if obj in from_types else []
            ctx.land(win, EntityLoad(obj, tables=[records_to_table(settings, obj, rows)], ids=ids, extra_meta=meta),
                     state_update=lambda state, o=obj, owed=owed: add_pending_associations(state, o, owed))

    # associations of every record landed whose associations have not landed yet: this run's records and those of
    # an earlier run that failed before its associations landed (durable in state, README "Associations")
    pending = pending_associations(run.state)
    pairs = [(f, t) for f, t in settings.association_pairs if f in extracted_ids or f in pending]
    if pairs:
        win = run.window("associations", settings.lookback, unbounded_first_run=True)
        owed = {f: list(pending.get(f, ())) for f, _ in pairs}
        carried = sum(len(set(v) - set(extracted_ids.get(f, ()))) for f, v in owed.items())
        with run.load("associations", client=client) as ctx:
            # a pair whose reverse is configured, both objects listed over their whole history in this run, is read
            # from the side with fewer ids and the reverse derived (README "Associations")
            assoc, covered, requests, derived = read_pairs(client, settings, pairs, owed, listed_outside)
            # the other side: HubSpot does not move a record's last-modified date when another record is
            # associated with it, so an unchanged contact's link to a new ticket is read here, from the ticket's
            # side (README "Associations")
            back = read_back_ids(assoc, settings.association_pairs, covered)
            for (from_type, to_type), ids in back.items():
                assoc.extend(read_associations(client, settings, from_type, to_type, ids, requests))
            keys = [(a["from_type"], a["from_id"], a["to_type"], a["to_id"], a["type_id"]) for a in assoc]
            ctx.land(win, EntityLoad("associations", tables=[associations_table(assoc)], ids=keys,
                                     extra_meta={"pairs": [f"{f}->{t}" for f, t in pairs],
                                                 "from_ids": {f: len(v) for f, v in owed.items()},
                                                 "from_ids_of_earlier_runs": carried,
                                                 "to_ids_read_back": {f"{f}->{t}": len(v)
                                                                      for (f, t), v in back.items()},
                                                 "batch_reads": requests, "derived": derived}),
                     state_update=lambda state: clear_pending_associations(state, owed))

    archived = settings.objects if settings.archived_objects is None else settings.archived_objects
    if mode == "incremental":
        for obj in archived:
            _land_archived(run, client, settings, obj)

    if settings.include_email_events:
        win = run.window("email_events", settings.lookback)
        with run.load("email_events", client=client) as ctx:
            events: List[Dict[str, Any]] = []
            for page in email_event_pages(client, settings, win.start, win.end):
                events.extend(page)
            ids = [None if e.get("id") is None else str(e.get("id")) for e in events]
            ctx.land(win, EntityLoad("email_events", tables=[email_events_table(events)], ids=ids))
    return report(run)


PENDING_KEY = "pending_from_ids"   # state: entities.associations.pending_from_ids = {object: [id, ...]}


def pending_associations(state: Dict[str, Any]) -> Dict[str, List[str]]:
    """Ids per object whose records landed but whose associations have not landed yet."""
    return dict(state.get("entities", {}).get("associations", {}).get(PENDING_KEY) or {})


def add_pending_associations(state: Dict[str, Any], obj: str, ids: List[str]) -> None:
    if not ids:
        return
    est = state.setdefault("entities", {}).setdefault("associations", {})
    pend = est.setdefault(PENDING_KEY, {})
    pend[obj] = list(dict.fromkeys(list(pend.get(obj) or []) + list(ids)))


def clear_pending_associations(state: Dict[str, Any], read: Dict[str, List[str]]) -> None:
    """After the associations of ``read`` landed: drop exactly those ids (ids added since stay owed)."""
    est = state.setdefault("entities", {}).setdefault("associations", {})
    pend = est.get(PENDING_KEY) or {}
    for obj, ids in read.items():
        done = set(ids)
        left = [i for i in pend.get(obj) or [] if i not in done]
        if left:
            pend[obj] = left
        else:
            pend.pop(obj, None)
    est[PENDING_KEY] = pend


def _land_archived(run: ExtractRun, client, settings: HubspotSettings, obj: str) -> None:
    """``<obj>_archived``: the complete list of archived records now (a snapshot: every load holds all of them).
    Staging marks a record deleted when its id is in the newest ``<obj>_archived`` load (and it was not restored:
    a restored record reappears in search with a later ``updatedAt`` than ``archivedAt``)."""
    entity = f"{obj}_archived"
    win = EntityWindow(entity, EPOCH, run.window_end, None, True)
    with run.load(entity, client=client) as ctx:
        rows: List[Dict[str, Any]] = []
        for page in archived_pages(client, settings, obj):
            rows.extend(page)
        ids = [None if r.get("id") is None else str(r.get("id")) for r in rows]
        ctx.land(win, EntityLoad(entity, tables=[records_to_table(settings, obj, rows)], ids=ids,
                                 extra_meta={"snapshot": True, "snapshot_of": obj, "archived": True}),
                 cursor_after=None)

