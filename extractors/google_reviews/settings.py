"""Google Business Profile v4 reviews: endpoints, page size, defaults (config from env, see README)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import List, Optional

from extractors.common.http import HttpConfig, HttpSourceSettings, RateLimit, vendor_limits
from extractors.common.reread import interval_days
from extractors.common.settings import ConfigError, Env, env_int, env_list, env_str, history_start_from_env

SOURCE = "google_reviews"
ENTITY = "reviews"
DEFAULT_BASE_URL = "https://mybusiness.googleapis.com"
REVIEWS_PATH = "/v4/accounts/{account}/locations/{location}/reviews"
PAGE_SIZE = 50                     # API maximum
ORDER_BY = "updateTime desc"       # the only time ordering the API offers
DEFAULT_LOOKBACK_DAYS = 3          # replies / edits bump updateTime; re-read a small overlap
# The list has no time filter and never says what was deleted (nor, the docs do not promise it, whether every reply
# change moves updateTime): every FULL_REREAD days a run pages every location to the end, lands the latest version of
# every review and the reviewIds held (reviews__ids: deletions).
DEFAULT_FULL_REREAD_DAYS = 7
COLUMNS = ["name", "reviewId", "reviewer__displayName", "reviewer__profilePhotoUrl", "reviewer__isAnonymous",
           "starRating", "comment", "createTime", "updateTime", "reviewReply__comment", "reviewReply__updateTime",
           "_location_name"]

RATE_LIMITS = {   # vendor: 300 requests / minute (Business Profile API default quota)
    "RATE_LIMIT": ("280/60s", None),
}


# (setting that makes the source configured, setting of its endpoint, the endpoint's default): cxw.pii refuses the
# public demo PII salt when a configured source's endpoint is not on loopback
ENDPOINT = ("CXW_GOOGLE_TOKEN", "CXW_GOOGLE_BASE_URL", DEFAULT_BASE_URL)

# Airflow connection cxw_google_reviews: field -> the variable it fills (extractors.common.connection applies it)
CONNECTION_FIELDS = {"host": "CXW_GOOGLE_BASE_URL", "password": "CXW_GOOGLE_TOKEN",
                     "extra.account_id": "CXW_GOOGLE_ACCOUNT_ID", "extra.location_ids": "CXW_GOOGLE_LOCATION_IDS"}


@dataclass(kw_only=True)
class GoogleReviewsSettings(HttpSourceSettings):
    token: str
    account_id: str
    location_ids: List[str]
    base_url: str = DEFAULT_BASE_URL
    page_size: int = PAGE_SIZE
    lookback: timedelta = timedelta(days=DEFAULT_LOOKBACK_DAYS)
    full_reread: Optional[timedelta] = timedelta(days=DEFAULT_FULL_REREAD_DAYS)  # None: never
    # client-side limits below the vendor's (CXW_GOOGLE_RATE_LIMIT=90/10s ..., "off" disables); [] = none
    rate_limits: List[RateLimit] = field(default_factory=lambda: vendor_limits("google", RATE_LIMITS))

    @classmethod
    def from_env(cls, env: Env = None) -> "GoogleReviewsSettings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        locations = env_list("CXW_GOOGLE_LOCATION_IDS", env=env)
        if not locations:
            raise ConfigError("environment variable CXW_GOOGLE_LOCATION_IDS is required (comma separated)")
        return cls(
            token=env_str("CXW_GOOGLE_TOKEN", required=True, env=env),
            account_id=env_str("CXW_GOOGLE_ACCOUNT_ID", required=True, env=env),
            location_ids=locations,
            base_url=env_str("CXW_GOOGLE_BASE_URL", DEFAULT_BASE_URL, env=env),
            lookback=timedelta(days=env_int("CXW_GOOGLE_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS, env=env)),
            full_reread=interval_days(env_int("CXW_GOOGLE_FULL_REREAD_DAYS", DEFAULT_FULL_REREAD_DAYS, env=env)),
            history_start=history_start_from_env(env),
            http=HttpConfig.from_env(env),
            rate_limits=vendor_limits("google", RATE_LIMITS, env),
        )


SETTINGS = GoogleReviewsSettings   # the class extractors.common.connection builds from the environment / a connection
