"""Case progress never runs ahead of the case events a worker has not read yet.

A worker reads its persons' events (`visits`) apart from the pings (unsplit: everyone's,
with another consumer; staged: its own partitions', whose stays stages run ahead of the
visits); each partition is known read to the end only from fetches of its own. A visits partition reported at its end must not count as far as pings read
since: a positive test already on the broker, but not yet fetched, would be passed by
the case progress announced on `cases`, every scorer would go past it, and the case
notice would come too late (close contacts turned red 21-65 min late in a city
published at full speed; issue 18). Here the visits fetch is held back on purpose
(the consumer paused), which makes that moment last as long as the test needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from healthcode.broker import EmbeddedBroker
from scoring.replay import replay_file
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339, parse_rfc3339
from simulators.publish import route
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, read_codes
from streams.issuing import timeline_entry
from streams.reading import json_object, read_from_start
from streams.topics import Topics

from streams.testing import BackgroundWorker

from tests.integration.streams.conftest import RULES

LATENESS_S = 600
START = parse_rfc3339("2022-04-01T08:00:00Z")
HELD_BACK_AT = START + 2 * 3600
"""Visits are held back from here on (a tick boundary), the positive test comes just after.

Before it the worker goes quiet and settles what it has: a pause inside a 15-minute
tick would settle part of a tick early, a difference of its own (reasons' `until`
dates, not level changes; see the report on issue 18), kept out of this test."""
PING_EVERY_S = 300
POSITIVE_AT = HELD_BACK_AT + 5 * 60
END = START + 6 * 3600
CASE, CONTACT = "case-01", "contact-01"
PLACE = (31.2304, 121.4737)


def _pings(first: int, last: int) -> list[bytes]:
    """The case and the contact at the same place every 5 minutes (a close contact)."""
    return [
        orjson.dumps({"event_id": f"ping-{person}-{at}", "type": "ping", "ts": format_rfc3339(at), "person": person,
                      "lat": PLACE[0], "lon": PLACE[1], "source": "gps"})
        for at in range(first, last + 1, PING_EVERY_S) for person in (CASE, CONTACT)
    ]


def _positive_test() -> bytes:
    return orjson.dumps({
        "event_id": "test-case-01", "type": "test_result", "ts": format_rfc3339(POSITIVE_AT), "person": CASE,
        "sampled_at": format_rfc3339(POSITIVE_AT - 3600), "test": "pcr", "result": "positive",
    })


def _publish(bootstrap: str, topics: Topics, lines: list[bytes]) -> None:
    """Publish as the simulator routes them; returns once the broker has acknowledged every line."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
    try:
        for line in lines:
            where = route(line, topics)
            producer.send(where.topic, key=where.key, value=line)
        producer.flush()
    finally:
        producer.close()


def _in_loop(running: BackgroundWorker, action: Callable[[], None]) -> None:
    """Run `action` on the worker's event loop (its consumers are not thread-safe)."""
    running.call_soon(action)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def _progress_announced(bootstrap: str, topics: Topics) -> int:
    """The furthest case progress any worker announced on `cases`."""
    records = read_from_start(bootstrap, topics.cases, idle_s=1.0)
    marks = [json_object(r.value) for r in records]
    return max(m["through"] for m in marks if m.get("type") == "progress")


def _every_ping_read(pipeline: Any) -> bool:
    """The worker has read every ping up to `END` and found its pings partitions quiet since."""
    now = time.monotonic()
    marks = [pipeline.step.marks] if pipeline.stays is None else list(pipeline.stays.marks.values())
    return max(m.newest() for m in marks) >= END and all(m.idle(now) for m in marks if m.newest() >= START)


@pytest.mark.parametrize("stages", [False, True], ids=["unsplit", "staged"])
def test_progress_waits_for_a_case_event_on_the_broker_that_the_visits_fetch_has_not_brought_yet(
    broker: EmbeddedBroker, start_worker, partitions: int, unique: str, tmp_path: Path, stages: bool
) -> None:
    topics = Topics(prefix=f"cp{unique}.")
    create_topics(broker.bootstrap, topics, partitions=partitions)
    before = _pings(START, HELD_BACK_AT - PING_EVERY_S)
    held_back = [_positive_test()]
    after = _pings(HELD_BACK_AT, END)
    running = start_worker(topics, f"g{unique}", lateness_s=LATENESS_S, stages=stages)
    pipeline = running.pipeline
    _publish(broker.bootstrap, topics, before)
    running.wait_settled(HELD_BACK_AT - PING_EVERY_S)

    consumer = pipeline.app.consumer
    visits = {tp for tp in consumer.assignment() if tp.topic == topics.visits}
    assert len(visits) == partitions
    _in_loop(running, lambda: consumer.pause_partitions(visits))
    time.sleep(1.0)  # a visits fetch in flight when paused comes back before the test is published
    _publish(broker.bootstrap, topics, held_back)  # on the broker before any of the pings after it
    _publish(broker.bootstrap, topics, after)
    _wait(lambda: _every_ping_read(pipeline), "every ping read")
    time.sleep(1.0)  # steps enough for the worker to announce all the progress it will
    announced = _progress_announced(broker.bootstrap, topics)
    assert announced < POSITIVE_AT, (
        f"progress announced through {format_rfc3339(announced)} while the positive test of "
        f"{format_rfc3339(POSITIVE_AT)} sat unread on the broker"
    )

    _in_loop(running, lambda: consumer.resume_partitions(visits))
    running.wait_settled(END)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(before + held_back + after) + b"\n")
    expected = [c.to_json() for c in replay_file(events, load_rule_set(RULES)).timeline]
    assert any(c["person"] == CONTACT and c["level"] == "red" for c in expected), "the scenario has a close contact"
    streamed = [timeline_entry(r) for r in distinct_changes(list(read_codes(broker.bootstrap, topics, idle_s=2.0)))]
    assert streamed == expected
