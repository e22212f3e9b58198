"""The analyses the `analyze` task runs, in order (docs/analytics.md)."""

from __future__ import annotations

from cxw.analytics import Analysis
from cxw.analytics.clv import ANALYSIS as CLV

ANALYSES: tuple[Analysis, ...] = (
    CLV,
)
