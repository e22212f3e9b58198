"""Google Business Profile v4 reviews extractor -> raw/google_reviews/reviews/. Entry point: :func:`extract`."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from extractors.common.http import ConfigHints, make_rest_client
from extractors.common.reread import full_reread_due, land_id_snapshot
from extractors.common.runner import EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .helpers import location_reviews, reviews_table
from .settings import ENTITY, SOURCE, GoogleReviewsSettings

__all__ = ["extract", "GoogleReviewsSettings"]


def _client(settings: GoogleReviewsSettings):
    return make_rest_client(SOURCE, settings.base_url, settings.http, auth=BearerTokenAuth(settings.token),
                            secrets=[settings.token],
                            rate_limits=settings.rate_limits, hints=ConfigHints(
                                auth=["CXW_GOOGLE_TOKEN"], base_url="CXW_GOOGLE_BASE_URL",
                                ids={"CXW_GOOGLE_LOCATION_IDS": settings.location_ids,
                                     "CXW_GOOGLE_ACCOUNT_ID": [settings.account_id]}))


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[GoogleReviewsSettings] = None) -> Dict[str, Any]:
    settings = settings or GoogleReviewsSettings.from_env()
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env(), secrets=[settings.token])
    client = _client(settings)
    win = run.window(ENTITY, settings.lookback)
    # Full re-read (first run, then every settings.full_reread): page every location to the end, land every review
    # updated from the history start on (the latest version of each) and every reviewId held as reviews__ids.
    full = full_reread_due(run, ENTITY, settings.full_reread)
    if full:
        win = EntityWindow(ENTITY, min(win.start, run.history_start), win.end, win.cursor_before, win.full_history)
    listed: Optional[List[Any]] = [] if full else None
    with run.load(ENTITY, client=client) as ctx:
        rows: List[Tuple[str, Dict[str, Any]]] = []
        for location in settings.location_ids:
            name = f"accounts/{settings.account_id}/locations/{location}"
            for review in location_reviews(client, settings, location, win.start, win.end, listed):
                rows.append((name, review))
        ids = [r.get("name") or (r.get("reviewId") and f"{n}/reviews/{r.get('reviewId')}") for n, r in rows]
        ctx.land(win, EntityLoad(ENTITY, tables=[reviews_table(rows)], ids=ids,
                                 extra_meta={"locations": list(settings.location_ids), "full_reread": full}))
    if listed is not None:
        land_id_snapshot(run, ENTITY, "reviewId", listed, extra_meta={"locations": list(settings.location_ids)})
    return report(run)

