"""Topics are created with explicit retention: raw personal data (pings, dead letters)
for the rules' window, the rest for good; inputs stamped with the broker's append time."""

from __future__ import annotations

import pytest

from streams.admin import retention_plan, topic_configs
from streams.topics import SPECS

DAY_S = 86_400
WINDOW_S = 30 * DAY_S
LETTERS_S = 31 * DAY_S
HOUR_MS = str(3_600_000)


def _spec(role: str):
    return next(spec for spec in SPECS if spec.role == role)


def test_pings_are_kept_only_as_long_as_the_rules_window_needs() -> None:
    configs = topic_configs(_spec("pings"), WINDOW_S, LETTERS_S)
    assert configs["retention.ms"] == str(WINDOW_S * 1000)
    assert configs["segment.ms"] == HOUR_MS, "whole segments are deleted: an hourly roll bounds the overshoot"


def test_dead_letters_hold_raw_bytes_so_they_are_kept_only_as_long_as_configured() -> None:
    assert topic_configs(_spec("dead-letter"), WINDOW_S, LETTERS_S) == {
        "retention.ms": str(LETTERS_S * 1000), "segment.ms": HOUR_MS,
    }


def test_without_bounds_nothing_is_deleted_not_even_by_the_brokers_default() -> None:
    for role in ("pings", "dead-letter"):
        assert topic_configs(_spec(role), None, None)["retention.ms"] == "-1"


def test_topics_a_rebuild_reads_from_the_start_keep_everything_not_the_brokers_default() -> None:
    for role in ("visits", "areas", "cases", "codes"):
        assert topic_configs(_spec(role), WINDOW_S, LETTERS_S)["retention.ms"] == "-1"
        assert "segment.ms" not in topic_configs(_spec(role), WINDOW_S, LETTERS_S)


def test_inputs_are_stamped_by_the_broker_so_a_source_cannot_choose_how_long_they_stay() -> None:
    stamped = [spec.role for spec in SPECS if topic_configs(spec, WINDOW_S).get("message.timestamp.type")]
    assert stamped == ["pings", "visits", "areas"]
    assert {topic_configs(_spec(role), WINDOW_S)["message.timestamp.type"] for role in stamped} == {"LogAppendTime"}


def test_rule_sets_are_compacted_by_id() -> None:
    assert topic_configs(_spec("rules"), WINDOW_S, LETTERS_S) == {"cleanup.policy": "compact"}


def test_pings_and_the_stages_topics_hold_presence() -> None:
    assert [spec.role for spec in SPECS if spec.presence] == ["pings", "stays", "exposures"]


def test_the_plan_keeps_the_window_and_lateness_rounded_up_to_days_and_a_day_more() -> None:
    plan = retention_plan(14 * DAY_S, 600)
    assert plan.presence_s == 16 * DAY_S
    assert plan.dead_letters_s == plan.presence_s, "dead letters default to the pings' retention"
    assert retention_plan(14 * DAY_S, 0).presence_s == 15 * DAY_S


def test_the_dead_letter_retention_is_configurable_and_checked() -> None:
    assert retention_plan(14 * DAY_S, 600, "30d").dead_letters_s == 30 * DAY_S
    with pytest.raises(ValueError, match="not a duration"):
        retention_plan(14 * DAY_S, 600, "a month")
