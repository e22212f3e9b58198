"""The PII salt: never the public demo salt against real systems (issue 17 point 5).

`CXW_PII_SALT` salts the e-mail / phone / name hashes (dbt_project/macros/pii.sql, cxw.erase). Unset, it is the public
demo salt `demo-salt-not-secret`: fine for the demo company on loopback, but hashes salted with a published value are
reversible by a dictionary of e-mails. So as soon as a configured source is not the demo's loopback, the demo salt
is refused with a message naming CXW_PII_SALT and how to set it (no salt is generated behind the operator's back: a
salt that changes or gets lost changes every hash and breaks identity resolution across runs)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from extractors.common.settings import ConfigError

DEMO_SALT = "demo-salt-not-secret"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def endpoints(sources=None) -> dict[str, tuple[str, str, str | None]]:
    """source -> (setting that makes it configured, setting of its endpoint, the endpoint's default): each source's
    ``ENDPOINT``, declared next to its settings (extractors/<source>/settings.py), for ``sources`` (default all;
    names that are not a source are left out). Only those sources' packages are imported: importing a settings
    module imports its whole extractor (dlt for the HTTP sources, connectorx and SQLAlchemy for Odoo), and an
    extract task checks its own source only — importing all six cost each extract task about 1 CPU-s, the bulk of
    a no-op extract (docs/DECISIONLOG.md, 2026-12-07)."""
    from extractors import SOURCES
    from extractors.common.connection import settings_module

    wanted = SOURCES if sources is None else [s for s in sources if s in SOURCES]
    return {source: settings_module(source).ENDPOINT for source in wanted}


def pii_salt() -> str:
    from .settings import settings

    return settings().pii_salt or DEMO_SALT


def _remote(url: str) -> bool:
    """True when ``url`` names a host other than loopback (a local path or a sqlite file is not decided: False)."""
    parts = urlsplit(url)
    if not parts.scheme or parts.scheme == "file" or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        return False
    if parts.scheme.startswith("sqlite"):
        return False
    if parts.scheme in ("gs", "gcs", "s3", "s3a", "abfs", "az"):
        return True
    try:
        host = parts.hostname
    except ValueError:
        return True
    return bool(host) and host not in LOOPBACK


def non_demo_sources(sources=None, env=None) -> list[tuple[str, str]]:
    """(source, endpoint setting) of each configured source whose endpoint is not on loopback (names only); the
    sources' settings are read from ``env`` (an extract task's: the environment with its Airflow connection's values
    on top), by default the environment."""
    env = os.environ if env is None else env
    out = []
    known = endpoints(sources or None)
    for source in sources or known:
        if source not in known:
            continue
        configured, setting, default = known[source]
        if not env.get(configured):
            continue
        if _remote(env.get(setting) or default or ""):
            out.append((source, setting))
    return out


def require_private_salt(sources=None, env=None) -> None:
    """Raise ConfigError (setting CXW_PII_SALT) when the salt is the public demo salt and a configured source (of
    ``sources``, default all; settings read from ``env``, default the environment) is not the demo's loopback."""
    if pii_salt() != DEMO_SALT:
        return
    found = non_demo_sources(sources, env)
    if not found:
        return
    names = ", ".join(f"{s} ({setting})" for s, setting in found)
    raise ConfigError(
        f"CXW_PII_SALT is unset or the public demo salt while {names} points at a real system, not the demo's "
        "loopback: hashes salted with a published value can be reversed with a list of e-mails",
        source=found[0][0], setting="CXW_PII_SALT",
        fix="set CXW_PII_SALT to a long random secret kept in your secrets store, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` (keep it: a new salt changes every hash)")
