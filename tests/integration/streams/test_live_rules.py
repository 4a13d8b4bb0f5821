"""A rule set published while workers run switches levels at its valid_from event time."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kafka import KafkaProducer

from healthcode.broker import EmbeddedBroker
from scoring.replay import replay_file
from scoring.rules import RuleSet, load_rule_set
from scoring.events import EventError, decode_event
from scoring.timeutil import format_rfc3339, to_epoch
from simulators.publish import kafka_publisher
from streams.codes_reader import distinct_changes, read_codes
from streams.issuing import timeline_entry
from streams.rulebook import rule_set_message

RULES = Path(__file__).resolve().parents[3] / "rules"


def _event_time(line: bytes) -> int | None:
    try:
        return to_epoch(decode_event(line).ts)
    except EventError:
        return None


def test_a_published_rule_set_switches_levels_at_its_valid_from(
    broker: EmbeddedBroker, unpublished_city, start_worker, unique
) -> None:
    lines = unpublished_city.events.read_bytes().splitlines()
    times = [t for t in map(_event_time, lines) if t is not None]
    start, end = min(times), max(times)
    default = load_rule_set(RULES / "default.yaml")
    # Switch while people are restricted, so that the new rules have someone to change.
    switch = min(c.at for c in replay_file(unpublished_city.events, default).timeline) + 2 * 3600
    split = switch - 3600
    text = (RULES / "points.yaml").read_text()
    document = yaml.safe_load(text)
    document["valid_from"] = format_rfc3339(switch)
    points_text = yaml.safe_dump(document, sort_keys=False)
    points = RuleSet.from_yaml_text(points_text, "points (switched)")

    publisher, sink = kafka_publisher(broker.bootstrap, unpublished_city.topics, speed=None)
    first = [line for line in lines if (_event_time(line) or start) < split]
    publisher.publish(first)
    sink.close()
    worker = start_worker(unpublished_city.topics, f"g{unique}")
    worker.wait_settled(max(t for t in map(_event_time, first) if t is not None))

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(unpublished_city.topics.rules, key=points.ref.encode(), value=rule_set_message(points, points_text))
    producer.flush()
    producer.close()
    deadline = time.monotonic() + 60
    while not (points.ref in worker.view.rule_sets and worker.view.ready):
        assert time.monotonic() < deadline, "the worker did not load the published rule set"
        time.sleep(0.2)
    publisher, sink = kafka_publisher(broker.bootstrap, unpublished_city.topics, speed=None)
    publisher.publish([line for line in lines if (_event_time(line) or start) >= split])
    sink.close()
    worker.wait_settled(end)

    expected = replay_file(unpublished_city.events, [default, points]).timeline
    assert any(c.at == switch and c.rule_set == points.ref for c in expected), "the city must feel the switch"
    records = list(read_codes(broker.bootstrap, unpublished_city.topics, idle_s=2.0))
    streamed = [timeline_entry(r) for r in distinct_changes(records)]
    assert streamed == [c.to_json() for c in expected]
    assert {r["rule_set"] for r in records if r["assessed_at"] >= format_rfc3339(switch)} == {points.ref}
