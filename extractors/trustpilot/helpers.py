"""Trustpilot helpers: client-credentials token, reviews paging by links[rel=next-page]."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional

import pyarrow as pa
from requests.auth import HTTPBasicAuth

from extractors.common.http import LinkRelPaginator, SourceClient
from extractors.common.records import flatten, rows_to_table
from extractors.common.settings import parse_utc

from .settings import COLUMNS, JSON_TEXT_KEYS, ORDER_BY, REVIEWS_PATH, TOKEN_PATH, TrustpilotSettings


def fetch_token(client: SourceClient, settings: TrustpilotSettings) -> str:
    resp = client.request(TOKEN_PATH, method="POST", data={"grant_type": "client_credentials"},
                          auth=HTTPBasicAuth(settings.api_key, settings.api_secret))
    token = resp.json().get("access_token")
    if not token:
        raise RuntimeError("trustpilot: token endpoint answered without access_token")
    return token


def created_at(review: Dict[str, Any]):
    try:
        return parse_utc(review.get("createdAt"))
    except (TypeError, ValueError):
        return None


def unit_reviews(client: SourceClient, settings: TrustpilotSettings, unit: str, start: Optional[datetime],
                 end: datetime) -> Iterator[Dict[str, Any]]:
    """Reviews of one business unit created in ``[start, end)`` (``startDateTime`` / ``endDateTime`` server side,
    and checked again client side in case the API ignores ``endDateTime``), oldest first; ``links`` removed from
    each review. ``start`` None: the whole business unit up to ``end`` (a full re-read)."""
    params = {"perPage": settings.per_page, "orderBy": ORDER_BY,
              "endDateTime": end.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")}
    if start is not None:
        params["startDateTime"] = start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    path = REVIEWS_PATH.format(business_unit_id=unit)
    for page in client.paginate(path, params=params, paginator=LinkRelPaginator("next-page"),
                                data_selector="reviews"):
        past_end = False
        for review in page:
            if not isinstance(review, dict):
                continue
            review = {k: v for k, v in review.items() if k != "links"}
            ts = created_at(review)
            if ts is not None:
                if ts >= end:
                    past_end = True
                    continue
                if start is not None and ts < start:
                    continue
            yield review
        if past_end:
            break  # ordered by createdAt ascending: nothing later is in the window


def reviews_table(rows: List[Dict[str, Any]]) -> pa.Table:
    flat = [flatten(r, max_depth=2, json_keys=JSON_TEXT_KEYS, drop_keys=("links",)) for r in rows]
    return rows_to_table(flat, COLUMNS, string_columns=["id", "createdAt", "updatedAt", "experiencedAt",
                                                        "tags", "location"])
