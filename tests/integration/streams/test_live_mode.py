"""Live mode: event time is wall time, so the wall clock moves quiet inputs' watermarks on.

A fever clinic visit gives yellow, which lapses 14 days later with no test. Nothing
else is ever published: only the worker's clock can tell it those 14 days passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from kafka import KafkaProducer

from healthcode.broker import EmbeddedBroker
from scoring.events import Visit, encode_event
from scoring.timeutil import format_rfc3339
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, read_codes
from streams.topics import Topics

DAY = 86_400
PERSON = "p-live-0001"


class Clock:
    """The worker's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def visited(broker: EmbeddedBroker, unique: str, partitions: int) -> tuple[Topics, int]:
    """Topics holding one fever clinic visit, made a minute ago; and its event time."""
    topics = Topics(prefix=f"l{unique}.")
    create_topics(broker.bootstrap, topics, partitions=partitions)
    at = int(time.time()) - 60
    visit = Visit(event_id="visit-1", ts=datetime.fromtimestamp(at, timezone.utc), person=PERSON,
                  facility="h1", kind="fever_clinic")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topics.visits, key=PERSON.encode(), value=encode_event(visit))
    producer.flush()
    producer.close()
    return topics, at


def _levels(broker: EmbeddedBroker, topics: Topics) -> list[tuple[str, str]]:
    records = distinct_changes(list(read_codes(broker.bootstrap, topics, idle_s=1.0)))
    return [(record["level"], record["assessed_at"]) for record in records]


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.parametrize("stages", [False, True], ids=["unsplit", "stages"])
def test_in_live_mode_the_wall_clock_lapses_a_level_with_no_new_input(
    broker: EmbeddedBroker, visited: tuple[Topics, int], start_worker, unique: str, stages: bool
) -> None:
    topics, at = visited
    clock = Clock(at + 60)
    worker = start_worker(topics, f"g{unique}", live=True, lateness_s=60, clock=clock, stages=stages)
    _wait_for(lambda: worker.view.ready, "the worker to own its partitions")
    clock.now = at + 2 * 3600
    _wait_for(lambda: worker.view.watermark >= at + 3600, "the clock to move the watermark")
    clock.now = at + 15 * DAY
    _wait_for(lambda: worker.view.watermark >= at + 14 * DAY, "the clock to pass the lapse")
    assert worker.error is None
    assert _levels(broker, topics) == [("yellow", format_rfc3339(at)), ("green", format_rfc3339(at + 14 * DAY))]


def test_without_live_mode_time_stands_still_when_inputs_are_quiet(
    broker: EmbeddedBroker, visited: tuple[Topics, int], start_worker, unique: str
) -> None:
    topics, at = visited
    clock = Clock(at + 15 * DAY)
    worker = start_worker(topics, f"g{unique}", live=False, lateness_s=60, clock=clock)
    _wait_for(lambda: worker.final_at >= at, "the idle inputs to settle the visit")
    time.sleep(3.0)
    assert worker.error is None
    assert worker.view.watermark < at + DAY
    assert _levels(broker, topics) == [("yellow", format_rfc3339(at))]
