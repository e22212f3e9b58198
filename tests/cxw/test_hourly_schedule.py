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
