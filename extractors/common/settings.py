"""Settings-from-environment helpers shared by the source ``settings.py`` modules."""
from __future__ import annotations

import os
from datetime import date, datetime, timezone
from typing import List, Optional

DEFAULT_HISTORY_START = "2025-01-01"


class ConfigError(ValueError):
    """A required setting is missing or malformed."""


def env_str(name: str, default: Optional[str] = None, required: bool = False) -> Optional[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        if required and default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    return value


def env_list(name: str, default: Optional[List[str]] = None) -> List[str]:
    value = os.environ.get(name)
    if not value:
        return list(default or [])
    return [v.strip() for v in value.split(",") if v.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be an integer") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be a number") from exc


def parse_utc(value) -> datetime:
    """Parse a date / ISO-8601 string / datetime into a tz-aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def history_start_from_env() -> datetime:
    return parse_utc(env_str("CXW_HISTORY_START", DEFAULT_HISTORY_START))


def iso(dt: Optional[datetime]) -> Optional[str]:
    """Canonical text form of a cursor: ISO-8601 UTC with microseconds and 'Z'."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def require_aware(name: str, dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")
    return dt.astimezone(timezone.utc)
