"""The analyses the `analyze` task runs, in this order (docs/analytics.md). One line per analysis."""

from __future__ import annotations

from . import Analysis
from .clv import ANALYSIS as CLV
from .key_drivers import ANALYSIS as KEY_DRIVERS
from .topics import ANALYSIS as TOPICS

ANALYSES: tuple[Analysis, ...] = (
    KEY_DRIVERS,
    CLV,
    TOPICS,
)
