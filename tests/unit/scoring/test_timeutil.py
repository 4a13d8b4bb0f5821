"""Event-time text and durations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.timeutil import format_duration, format_rfc3339, parse_duration, parse_rfc3339


def test_durations_read_in_the_units_epidemiologists_write() -> None:
    assert parse_duration("15m") == 900
    assert parse_duration("24h") == 86_400
    assert parse_duration("14d") == 14 * 86_400
    assert format_duration(14 * 86_400) == "14d"
    assert format_duration(90) == "90s"


@pytest.mark.parametrize("bad", ["", "14", "d14", "1.5h", "-3d", "3 days"])
def test_malformed_durations_are_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_rfc3339("2022-04-01T08:15:00")


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_rfc3339_round_trips(seconds: int) -> None:
    assert parse_rfc3339(format_rfc3339(seconds)) == seconds
