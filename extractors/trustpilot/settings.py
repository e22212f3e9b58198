"""Trustpilot business-units API v1 (private reviews): endpoints, page size, defaults."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import List, Optional

from extractors.common.http import HttpConfig, HttpSourceSettings, RateLimit, vendor_limits
from extractors.common.reread import interval_days
from extractors.common.settings import ConfigError, Env, env_int, env_list, env_str, history_start_from_env

SOURCE = "trustpilot"
ENTITY = "reviews"
DEFAULT_BASE_URL = "https://api.trustpilot.com"
TOKEN_PATH = "/v1/oauth/oauth-business-users-for-applications/accesstoken"
REVIEWS_PATH = "/v1/private/business-units/{business_unit_id}/reviews"
PER_PAGE = 100                       # API maximum
ORDER_BY = "createdat.asc"
# The API filters by creation time only, and consumers edit their reviews (stars, text) and companies reply long
# after: every run re-reads the reviews created in the last REREAD days (most edits and replies come within weeks)
# and, every FULL_REREAD days, the whole business unit (later edits, and deletions via the reviews__ids snapshot).
DEFAULT_REREAD_DAYS = 90
DEFAULT_FULL_REREAD_DAYS = 7
COLUMNS = ["id", "consumer__id", "consumer__displayName", "consumer__displayLocation", "consumer__numberOfReviews",
           "businessUnit__id", "businessUnit__identifyingName", "businessUnit__displayName", "stars", "title",
           "text", "language", "createdAt", "updatedAt", "experiencedAt", "referenceId", "referralEmail", "source",
           "isVerified", "status", "numberOfLikes", "companyReply__text", "companyReply__createdAt",
           "companyReply__updatedAt", "tags", "location"]
JSON_TEXT_KEYS = ("tags", "location", "complianceLabels", "reportData", "invitation")

RATE_LIMITS = {   # vendor recommendation: <= 833 calls / 5 minutes and <= 10,000 / hour per API key
    "RATE_LIMIT": ("800/300s", None),
    "HOURLY_RATE_LIMIT": ("9500/3600s", None),
}


# (setting that makes the source configured, setting of its endpoint, the endpoint's default): cxw.pii refuses the
# public demo PII salt when a configured source's endpoint is not on loopback
ENDPOINT = ("CXW_TRUSTPILOT_API_KEY", "CXW_TRUSTPILOT_BASE_URL", DEFAULT_BASE_URL)

# Airflow connection cxw_trustpilot: field -> the variable it fills (extractors.common.connection applies it)
CONNECTION_FIELDS = {"host": "CXW_TRUSTPILOT_BASE_URL", "login": "CXW_TRUSTPILOT_API_KEY",
                     "password": "CXW_TRUSTPILOT_API_SECRET",
                     "extra.business_unit_ids": "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS"}


@dataclass(kw_only=True)
class TrustpilotSettings(HttpSourceSettings):
    api_key: str
    api_secret: str
    business_unit_ids: List[str]
    base_url: str = DEFAULT_BASE_URL
    per_page: int = PER_PAGE
    lookback: timedelta = timedelta(days=DEFAULT_REREAD_DAYS)      # rolling re-read of recent creation time
    full_reread: Optional[timedelta] = timedelta(days=DEFAULT_FULL_REREAD_DAYS)  # None: never
    # client-side limits below the vendor's (CXW_TRUSTPILOT_RATE_LIMIT=90/10s ..., "off" disables); [] = none
    rate_limits: List[RateLimit] = field(default_factory=lambda: vendor_limits(SOURCE, RATE_LIMITS))

    @classmethod
    def from_env(cls, env: Env = None) -> "TrustpilotSettings":
        """``env``: the environment (default) or a mapping (the environment with a connection's values on top)."""
        units = env_list("CXW_TRUSTPILOT_BUSINESS_UNIT_IDS", env=env)
        if not units:
            raise ConfigError("environment variable CXW_TRUSTPILOT_BUSINESS_UNIT_IDS is required (comma separated)")
        return cls(
            api_key=env_str("CXW_TRUSTPILOT_API_KEY", required=True, env=env),
            api_secret=env_str("CXW_TRUSTPILOT_API_SECRET", required=True, env=env),
            business_unit_ids=units,
            base_url=env_str("CXW_TRUSTPILOT_BASE_URL", DEFAULT_BASE_URL, env=env),
            lookback=timedelta(days=env_int("CXW_TRUSTPILOT_REREAD_DAYS",
                                            env_int("CXW_TRUSTPILOT_LOOKBACK_DAYS", DEFAULT_REREAD_DAYS, env=env),
                                            env=env)),
            full_reread=interval_days(env_int("CXW_TRUSTPILOT_FULL_REREAD_DAYS", DEFAULT_FULL_REREAD_DAYS,
                                              env=env)),
            history_start=history_start_from_env(env),
            http=HttpConfig.from_env(env),
            rate_limits=vendor_limits(SOURCE, RATE_LIMITS, env),
        )


SETTINGS = TrustpilotSettings   # the class extractors.common.connection builds from the environment / a connection
