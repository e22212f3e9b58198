"""Keep secrets out of messages, URLs and files."""
from __future__ import annotations

import re
from typing import Iterable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SENSITIVE_PARAMS = re.compile(r"(token|key|secret|password|passwd|pwd|auth|signature|sig|code|credential)", re.I)


def redact_url(url: Optional[str]) -> Optional[str]:
    """Drop userinfo (user:password@) and mask sensitive query parameters."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if SENSITIVE_PARAMS.search(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: Optional[str], secrets: Iterable[str]) -> Optional[str]:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def without_values(text: Optional[str]) -> Optional[str]:
    """An error message fit for a log: its first line, cut before the first quoted text - drivers and Arrow quote
    the offending value or record ("Failed to parse string: '1.234,56' ...", "Original Line: {...}")."""
    if text is None:
        return None
    first = (text.strip().splitlines() or [""])[0]
    return re.split(r"['\"]", first, maxsplit=1)[0].strip() or "(no message)"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_DIGITS = re.compile(r"\+?\d[\d ()./-]{2,}\d")


def mask_values(text: Optional[str], limit: int = 300) -> Optional[str]:
    """One line of an error text with its values masked: quoted text (drivers, DuckDB, pandas and GX quote the
    offending value: "Could not convert string 'jane@example.org' to INT32") and e-mail addresses become
    ``<value>``, runs of 4+ digits (a phone, an id) ``<n>``; the words around them (the kind of error) stay."""
    if text is None:
        return None
    line = (text.strip().splitlines() or [""])[0]
    line = _EMAIL.sub("<value>", _QUOTED.sub("<value>", line))
    return _DIGITS.sub("<n>", line)[:limit]
