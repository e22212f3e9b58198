"""Settings-from-environment helpers shared by the source ``settings.py`` modules."""
from __future__ import annotations

import os
import re
from datetime import date, datetime, timezone
from typing import List, Mapping, Optional

DEFAULT_HISTORY_START = "2025-01-01"


class ConfigurationError(Exception):
    """A configuration or authorisation error: retrying cannot help, a person has to change a setting.

    Never retried - not by the HTTP retry policy, not by the orchestrator (the DAG's task wrapper turns it into
    Airflow's ``AirflowFailException``; extractors do not import Airflow). ``source``, ``setting`` (the setting(s)
    to change), ``endpoint`` (for a vendor's 4xx) and ``fix`` (what to do) are what the run summary shows."""

    def __init__(self, message: str, *, source: Optional[str] = None, setting: Optional[str] = None,
                 endpoint: Optional[str] = None, fix: Optional[str] = None) -> None:
        super().__init__(message)
        self.source = source
        self.setting = setting
        self.endpoint = endpoint
        self.fix = fix

    def details(self) -> dict:
        """The summary's view of the error (secret-free: names of settings, a path, a sentence)."""
        return {"source": self.source, "setting": self.setting, "endpoint": self.endpoint,
                "fix": self.fix or self.default_fix(), "error": str(self)}

    def default_fix(self) -> Optional[str]:
        return None


_SETTING = re.compile(r"\bCXW_[A-Z0-9_]+\b")


class ConfigError(ConfigurationError, ValueError):
    """A required setting is missing or malformed (the message names it; ``setting`` holds its name)."""

    def __init__(self, message: str, *, source: Optional[str] = None, setting: Optional[str] = None,
                 fix: Optional[str] = None) -> None:
        m = _SETTING.search(message)
        super().__init__(message, source=source, setting=setting or (m.group(0) if m else None), fix=fix)

    def default_fix(self) -> Optional[str]:
        if not self.setting:
            return None
        conn = f" or in the Airflow connection cxw_{self.source}" if self.source else ""
        return f"set {self.setting} to a valid value (in the environment{conn}; see the Settings table)"


Env = Optional[Mapping[str, str]]
"""Where a setting is read: ``None`` = the process environment; a mapping = the environment with an Airflow
connection's values on top (``extractors.common.connection``), never written back to ``os.environ``."""


def env_str(name: str, default: Optional[str] = None, required: bool = False, env: Env = None) -> Optional[str]:
    value = (os.environ if env is None else env).get(name)
    if value is None or value == "":
        if required and default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    return value


def env_list(name: str, default: Optional[List[str]] = None, env: Env = None) -> List[str]:
    value = (os.environ if env is None else env).get(name)
    if not value:
        return list(default or [])
    return [v.strip() for v in value.split(",") if v.strip()]


def env_int(name: str, default: int, env: Env = None) -> int:
    value = (os.environ if env is None else env).get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be an integer") from exc


def env_float(name: str, default: float, env: Env = None) -> float:
    value = (os.environ if env is None else env).get(name)
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


def history_start_from_env(env: Env = None) -> datetime:
    return parse_utc(env_str("CXW_HISTORY_START", DEFAULT_HISTORY_START, env=env))


def iso(dt: Optional[datetime]) -> Optional[str]:
    """Canonical text form of a cursor: ISO-8601 UTC with microseconds and 'Z'."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def require_aware(name: str, dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")
    return dt.astimezone(timezone.utc)
