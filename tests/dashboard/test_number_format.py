"""How the dashboard writes a published number (cxw_dashboard.app.fmt): the values come from DuckDB through pandas,
so counts arrive as numpy integers and flags as numpy booleans, not Python's int / bool."""

from decimal import Decimal

import numpy as np
import pytest

from cxw_dashboard.app import fmt


@pytest.mark.parametrize("value, shown", [
    (6, "6"), (np.int64(6), "6"), (np.int32(-3), "-3"), (np.uint8(0), "0"),
    (np.int64(123456), "123\u202f456"), (123456, "123\u202f456"),
    (np.float64(6.0), "6"), (6.0, "6"), (np.float64(0.25), "0.2500"), (12.345, "12.35"),
    (True, "yes"), (np.bool_(False), "no"), (None, "—"), (float("nan"), "—"), (Decimal("6.5"), "6.50"),
])
def test_a_count_is_shown_as_an_integer_whatever_its_numeric_type(value, shown):
    assert fmt(value) == shown
