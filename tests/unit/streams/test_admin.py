"""Topics are created with explicit retention: presence for the rules' window, the rest for good."""

from __future__ import annotations

from streams.admin import topic_configs
from streams.topics import SPECS

WINDOW_S = 30 * 86_400


def _spec(role: str):
    return next(spec for spec in SPECS if spec.role == role)


def test_pings_are_kept_only_as_long_as_the_rules_window_needs() -> None:
    assert topic_configs(_spec("pings"), WINDOW_S) == {"retention.ms": str(WINDOW_S * 1000)}


def test_topics_a_rebuild_reads_from_the_start_keep_everything_not_the_brokers_default() -> None:
    for role in ("visits", "areas", "cases", "codes", "dead-letter"):
        assert topic_configs(_spec(role), WINDOW_S) == {"retention.ms": "-1"}


def test_rule_sets_are_compacted_by_id() -> None:
    assert topic_configs(_spec("rules"), WINDOW_S) == {"cleanup.policy": "compact"}


def test_only_pings_hold_presence() -> None:
    assert [spec.role for spec in SPECS if spec.presence] == ["pings"]
