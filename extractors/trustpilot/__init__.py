"""Trustpilot private reviews extractor -> raw/trustpilot/reviews/. Entry point: :func:`extract`."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from extractors.common.http import ConfigHints, make_rest_client
from extractors.common.reread import full_reread_due, land_id_snapshot
from extractors.common.runner import EntityLoad, EntityWindow, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .helpers import created_at, fetch_token, reviews_table, unit_reviews
from .settings import ENTITY, SOURCE, TrustpilotSettings

__all__ = ["extract", "TrustpilotSettings"]


def _client(settings: TrustpilotSettings, secrets: List[str]):
    return make_rest_client(SOURCE, settings.base_url, settings.http, secrets=secrets,
                            rate_limits=settings.rate_limits, hints=ConfigHints(
                                auth=["CXW_TRUSTPILOT_API_KEY", "CXW_TRUSTPILOT_API_SECRET"],
                                base_url="CXW_TRUSTPILOT_BASE_URL",
                                ids={"CXW_TRUSTPILOT_BUSINESS_UNIT_IDS": settings.business_unit_ids}))


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[TrustpilotSettings] = None) -> Dict[str, Any]:
    settings = settings or TrustpilotSettings.from_env()
    secrets = [settings.api_key, settings.api_secret]
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env(), secrets=secrets)
    client = _client(settings, secrets)
    win = run.window(ENTITY, settings.lookback)
    # Full re-read (first run, then every settings.full_reread): list the whole business unit, land what was created
    # from the history start on (the latest version of every review), and every id it holds as reviews__ids.
    full = full_reread_due(run, ENTITY, settings.full_reread)
    if full:
        win = EntityWindow(ENTITY, min(win.start, run.history_start), win.end, win.cursor_before, win.full_history)
    rows: List[Dict[str, Any]] = []
    listed: List[Any] = []
    with run.load(ENTITY, client=client) as ctx:
        token = fetch_token(client, settings)
        secrets.append(token)
        run.secrets.append(token)
        ctx.deadletters.secrets.append(token)
        client.checker.secrets.append(token)
        client.rest.auth = BearerTokenAuth(token)
        for unit in settings.business_unit_ids:
            for review in unit_reviews(client, settings, unit, None if full else win.start, win.end):
                if full:
                    listed.append(review.get("id"))
                    ts = created_at(review)
                    if ts is not None and ts < win.start:
                        continue  # before the history start: held by the source (in the snapshot), not loaded
                rows.append(review)
        ids = [r.get("id") for r in rows]
        ctx.land(win, EntityLoad(ENTITY, tables=[reviews_table(rows)], ids=ids,
                                 extra_meta={"business_unit_ids": list(settings.business_unit_ids),
                                             "full_reread": full}))
    if full:
        land_id_snapshot(run, ENTITY, "id", listed,
                         extra_meta={"business_unit_ids": list(settings.business_unit_ids)})
    return report(run)

