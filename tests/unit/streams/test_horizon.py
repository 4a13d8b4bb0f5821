"""A rebuild publishes nothing it rebuilt from a past whose pings retention deleted."""

from __future__ import annotations

from streams.eventtime import NEVER
from streams.horizon import RebuildHorizon

WINDOW = 14 * 86_400


def test_with_every_ping_kept_the_whole_rebuilt_history_counts() -> None:
    horizon = RebuildHorizon(WINDOW)
    horizon.saw_ping(0, 1_000)
    assert horizon.publish_from == NEVER


def test_after_deletion_history_counts_from_a_window_after_the_latest_first_ping() -> None:
    horizon = RebuildHorizon(WINDOW, truncated=True)
    horizon.saw_ping(0, 5_000)
    horizon.saw_ping(1, 9_000)
    horizon.saw_ping(0, 1_000)
    horizon.saw_ping(1, 20_000)
    assert horizon.publish_from == 9_000 + WINDOW
