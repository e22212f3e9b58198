"""CXW_SCHEDULE (cxw/settings.py) and what an hourly run builds to (cxw/tasks.py): the KPI window of a run whose data
interval ends inside a day reaches the next midnight, so the day so far is in the KPIs; a daily run's stays at its
interval end."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cxw.settings import schedule_cron
from cxw.tasks import kpi_window_end_date

UTC = timezone.utc


def test_the_schedule_setting_gives_the_dags_cron():
    assert schedule_cron({}) == "0 0 * * *"
    assert schedule_cron({"CXW_SCHEDULE": "daily"}) == "0 0 * * *"
    assert schedule_cron({"CXW_SCHEDULE": " Hourly "}) == "0 * * * *"
    with pytest.raises(ValueError, match="CXW_SCHEDULE"):
        schedule_cron({"CXW_SCHEDULE": "weekly"})


def test_an_hourly_runs_kpi_window_includes_the_day_so_far():
    assert kpi_window_end_date(datetime(2025, 3, 2, tzinfo=UTC)) == "2025-03-02"          # daily: [.., 2025-03-02)
    assert kpi_window_end_date(datetime(2025, 3, 2, 14, tzinfo=UTC)) == "2025-03-03"      # hourly: today included
    assert kpi_window_end_date(datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC)) == "2025-03-03"


def test_the_marts_gate_judges_an_hourly_builds_kpi_freshness_against_the_kpi_window_end():
    """The marts gate's freshness check wants the newest KPI day 1..N days before the interval end's date. An hourly
    build's KPIs include the day so far, so the date it judges against is the next midnight, as the KPI window's."""
    from cxw.gate.marts import _as_date

    assert _as_date("2025-03-02T00:00:00+00:00").isoformat() == "2025-03-02"
    assert _as_date("2025-03-02T14:00:00+00:00").isoformat() == "2025-03-03"
    assert _as_date(datetime(2025, 3, 2, 14, tzinfo=UTC)).isoformat() == kpi_window_end_date(
        datetime(2025, 3, 2, 14, tzinfo=UTC))
    assert _as_date("2025-03-02").isoformat() == "2025-03-02" and _as_date(None) is None
