"""Dead-letter store: ``<deadletter_root>/<source>/<load_id>/<n>.json`` for bad pages / lines.

Each file holds ``reason, method, url (secrets redacted), status, payload`` (payload = raw text, capped).
Dead letters keep raw records, so they are owner-only: directories 0700, files 0600. Logs and error messages
name the file / line / load of a bad record, never its content.
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from .redact import redact_text, redact_url

MAX_PAYLOAD_CHARS = 1_000_000


def _private_dirs(path: str) -> None:
    """Create ``<deadletter_root>/<source>/<load_id>`` with owner-only permissions (0700) for the levels below the
    root; an existing level is narrowed too."""
    parent = os.path.dirname(os.path.dirname(path))          # <deadletter_root>
    os.makedirs(parent, exist_ok=True)
    for level in (os.path.dirname(path), path):
        os.makedirs(level, mode=0o700, exist_ok=True)
        if os.stat(level).st_mode & 0o077:
            os.chmod(level, 0o700)


class DeadLetterStore:
    def __init__(self, deadletter_root: str, source: str, load_id: str, secrets: Optional[List[str]] = None) -> None:
        self.dir = os.path.join(os.fspath(deadletter_root), source, load_id)
        self.source = source
        self.load_id = load_id
        self.secrets = [s for s in (secrets or []) if s]
        self.count = 0
        self.paths: List[str] = []
        self._lock = threading.Lock()

    def write(self, reason: str, *, method: Optional[str] = None, url: Optional[str] = None,
              status: Optional[int] = None, payload: Any = None, **extra: Any) -> str:
        with self._lock:
            n = self.count
            self.count += 1
        _private_dirs(self.dir)
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        text = payload if isinstance(payload, str) or payload is None else json.dumps(payload, default=str)
        if text is not None and len(text) > MAX_PAYLOAD_CHARS:
            text = text[:MAX_PAYLOAD_CHARS] + "...(truncated)"
        record: Dict[str, Any] = {
            "source": self.source,
            "load_id": self.load_id,
            "written_at": datetime.now(timezone.utc).isoformat(),
            "reason": redact_text(reason, self.secrets),
            "method": method,
            "url": redact_url(url) if url else None,
            "status": status,
            "payload": redact_text(text, self.secrets) if text is not None else None,
        }
        record.update({k: redact_text(v, self.secrets) if isinstance(v, str) else v for k, v in extra.items()})
        path = os.path.join(self.dir, f"{n}.json")
        tmp = path + ".tmp"
        # owner-only: a dead letter holds a raw record (identifiers, possibly personal data)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, ensure_ascii=False)
        os.replace(tmp, path)
        self.paths.append(path)
        return path
