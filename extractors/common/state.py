"""Cursor state per source: ``<state_root>/<source>.json``, replaced atomically (temp + os.replace)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict


class StateStore:
    def __init__(self, state_root: str, source: str) -> None:
        self.state_root = os.fspath(state_root)
        self.source = source
        self.path = os.path.join(self.state_root, f"{source}.json")

    def load(self) -> Dict[str, Any]:
        try:
            with open(self.path, "r", encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {"source": self.source, "entities": {}}

    def save(self, state: Dict[str, Any]) -> None:
        os.makedirs(self.state_root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.source}.", suffix=".tmp", dir=self.state_root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh, indent=1, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def entity(self, state: Dict[str, Any], entity: str) -> Dict[str, Any]:
        return state.setdefault("entities", {}).setdefault(entity, {})
