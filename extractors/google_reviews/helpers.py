"""Google reviews helpers: per-location paging newest-first with an early stop at the window start."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional

import pyarrow as pa

from extractors.common.http import CursorPaginator, SourceClient
from extractors.common.records import flatten, rows_to_table
from extractors.common.settings import parse_utc

from .settings import COLUMNS, ORDER_BY, REVIEWS_PATH, GoogleReviewsSettings


def _ts(value: Any) -> Optional[datetime]:
    if not value:
        return None
    try:
        text = str(value)
        # RFC 3339 with up to 9 fractional digits -> trim to microseconds for fromisoformat
        if "." in text:
            head, frac = text.split(".", 1)
            digits = "".join(ch for ch in frac if ch.isdigit())
            tail = frac[len(digits):]
            text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
        return parse_utc(text)
    except (ValueError, TypeError):
        return None


def location_reviews(client: SourceClient, settings: GoogleReviewsSettings, location: str, start: datetime,
                     end: datetime, listed: Optional[List[Any]] = None) -> Iterator[Dict[str, Any]]:
    """Reviews of one location with ``start <= updateTime < end``; paging stops at the first page whose
    oldest review is older than ``start`` (the list is ordered ``updateTime desc``). Reviews whose
    updateTime does not parse are kept (staging quarantines them). ``listed`` given (a full re-read): every page is
    read and the ``reviewId`` of every review the location holds is appended to it."""
    path = REVIEWS_PATH.format(account=settings.account_id, location=location)
    paginator = CursorPaginator(cursor_path="nextPageToken", cursor_param="pageToken")
    params = {"pageSize": settings.page_size, "orderBy": ORDER_BY}
    for page in client.paginate(path, params=params, paginator=paginator, data_selector="reviews"):
        oldest: Optional[datetime] = None
        for review in page:
            if not isinstance(review, dict):
                continue
            if listed is not None:
                listed.append(review.get("reviewId"))
            ts = _ts(review.get("updateTime"))
            if ts is not None:
                oldest = ts if oldest is None or ts < oldest else oldest
                if ts < start or ts >= end:
                    continue
            yield review
        if listed is None and oldest is not None and oldest < start:
            break


def reviews_table(rows: List[Dict[str, Any]]) -> pa.Table:
    flat = []
    for location_name, review in rows:
        f = flatten(review, max_depth=2)
        f["_location_name"] = location_name
        flat.append(f)
    return rows_to_table(flat, COLUMNS, string_columns=["name", "reviewId", "starRating", "comment",
                                                        "createTime", "updateTime"])
