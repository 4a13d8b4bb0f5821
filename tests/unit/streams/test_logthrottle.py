"""At most one log line of a kind per interval, and the next one says how many were held back."""

from __future__ import annotations

import logging

import pytest

from streams.logthrottle import MAX_KINDS, Throttle

INTERVAL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> Throttle:
    return Throttle(INTERVAL, clock=clock)


def _record(msg: str, *args: object, name: str = "aiokafka", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_lines_of_one_kind_within_the_interval_are_held_back(throttle: Throttle, clock: Clock) -> None:
    shown = []
    for n in range(150):
        clock.now += 0.01
        record = _record("Unable connect to node with id %s: %s", 111, f"attempt {n}")
        if throttle.filter(record):
            shown.append(record.getMessage())
    assert shown == ["Unable connect to node with id 111: attempt 0"]


def test_the_next_line_after_the_interval_says_how_many_like_it_were_held_back(
    throttle: Throttle, clock: Clock
) -> None:
    assert throttle.filter(_record("Failed fetch from %s", 1))
    for _ in range(41):
        clock.now += 0.2
        assert not throttle.filter(_record("Failed fetch from %s", 1))
    clock.now += 2.0
    record = _record("Failed fetch from %s", 2)
    assert throttle.filter(record)
    assert record.getMessage() == "Failed fetch from 2 [41 more like this in the last 10 s]"


def test_a_kind_is_its_logger_level_and_template_not_its_arguments(throttle: Throttle) -> None:
    assert throttle.filter(_record("Unable to update metadata from %s", [111]))
    assert throttle.filter(_record("Unable to update metadata from %s", [111], level=logging.WARNING))
    assert throttle.filter(_record("Unable to update metadata from %s", [111], name="aiokafka.client"))
    assert throttle.filter(_record("Group Coordinator Request failed: %s", "NodeNotReady"))
    assert not throttle.filter(_record("Unable to update metadata from %s", [222]))


def test_memory_stays_bounded_when_every_line_is_its_own_kind(throttle: Throttle) -> None:
    for n in range(3 * MAX_KINDS):
        assert throttle.filter(_record(f"line {n}"))
    assert len(throttle._kinds) <= MAX_KINDS
