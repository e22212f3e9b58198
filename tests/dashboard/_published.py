"""Helpers of the dashboard tests (module, not conftest, so tests can import it)."""

from __future__ import annotations

from pathlib import Path

import pytest


def publish_in(home: Path, run_id: str) -> dict:
    """Publish the build database of ``home`` as a new generation (the real publish, in this process)."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("CXW_HOME", str(home))
        mp.delenv("CXW_BUILD_DB", raising=False)
        from cxw.publish import publish

        rep = publish(run_id, "2025-04-30", "2025-05-01")
    finally:
        mp.undo()
    assert rep["status"] == "published", rep
    return rep
