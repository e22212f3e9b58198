"""Trustpilot private reviews extractor -> raw/trustpilot/reviews/. Entry point: :func:`extract`."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

import dlt
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from extractors.common.http import make_rest_client
from extractors.common.runner import EntityLoad, ExtractRun, report
from extractors.common.settings import history_start_from_env

from .helpers import fetch_token, reviews_table, unit_reviews
from .settings import ENTITY, SOURCE, TrustpilotSettings

__all__ = ["extract", "TrustpilotSettings", "trustpilot_source"]


def _client(settings: TrustpilotSettings, secrets: List[str]):
    return make_rest_client(SOURCE, settings.base_url, settings.http, secrets=secrets,
                            rate_limits=settings.rate_limits)


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[TrustpilotSettings] = None) -> Dict[str, Any]:
    settings = settings or TrustpilotSettings.from_env()
    secrets = [settings.api_key, settings.api_secret]
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=settings.history_start or history_start_from_env(), secrets=secrets)
    client = _client(settings, secrets)
    win = run.window(ENTITY, settings.lookback)
    ctx = run.begin(ENTITY)
    client.set_deadletters(ctx.deadletters)
    rows: List[Dict[str, Any]] = []
    try:
        token = fetch_token(client, settings)
        secrets.append(token)
        run.secrets.append(token)
        ctx.deadletters.secrets.append(token)
        client.checker.secrets.append(token)
        client.rest.auth = BearerTokenAuth(token)
        for unit in settings.business_unit_ids:
            rows.extend(unit_reviews(client, settings, unit, win.start, win.end))
    except BaseException:
        ctx.abort()
        raise
    ids = [r.get("id") for r in rows]
    ctx.land(win, EntityLoad(ENTITY, tables=[reviews_table(rows)], ids=ids,
                             extra_meta={"business_unit_ids": list(settings.business_unit_ids)}))
    return report(run)


@dlt.source(name="trustpilot")
def trustpilot_source(start: datetime, end: datetime, settings: Optional[TrustpilotSettings] = None):
    settings = settings or TrustpilotSettings.from_env()

    @dlt.resource(name=ENTITY, write_disposition="append")
    def reviews():
        client = _client(settings, [settings.api_key, settings.api_secret])
        client.rest.auth = BearerTokenAuth(fetch_token(client, settings))
        for unit in settings.business_unit_ids:
            batch = list(unit_reviews(client, settings, unit, start, end))
            if batch:
                yield reviews_table(batch)

    return reviews
