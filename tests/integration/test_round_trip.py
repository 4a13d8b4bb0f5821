"""A round trip through the real embedded broker: good events pass, a malformed one is dead-lettered."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from healthcode.broker import EmbeddedBroker
from scoring.events import Ping, encode_event
from streams.admin import create_topics
from streams.deadletter import Rejected, send_dead_letter
from streams.intake import intake_clock, triage
from streams.topics import Topics


@pytest.fixture
def topics(broker: EmbeddedBroker, unique: str) -> Topics:
    names = Topics(prefix=f"rt{unique}.")
    create_topics(broker.bootstrap, names, partitions=2)
    return names


def _ping(i: int) -> bytes:
    return encode_event(
        Ping.model_validate_json(
            orjson.dumps({"event_id": f"e{i}", "ts": "2022-04-01T08:15:00Z", "person": f"p{i % 3}",
                          "lat": 30.5, "lon": 114.3, "source": "gps"})
        )
    )


def _drain(consumer: KafkaConsumer, want: int) -> list:
    records = []
    for _ in range(60):
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
        if len(records) >= want:
            break
    return records


def test_good_events_pass_and_a_malformed_one_goes_to_dead_letter_with_its_reason(
    broker: EmbeddedBroker, topics: Topics, unique: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    good = [_ping(i) for i in range(10)]
    for i, value in enumerate(good[:5]):
        producer.send(topics.pings, key=f"p{i % 3}".encode(), value=value)
    producer.send(topics.pings, key=b"p9", value=b'{"type":"ping","event_id":"x","lat":"north"}')
    for i, value in enumerate(good[5:], start=5):
        producer.send(topics.pings, key=f"p{i % 3}".encode(), value=value)
    producer.flush()

    # The embedded broker's JoinGroup waits half the session timeout: keep it short.
    consumer = KafkaConsumer(
        topics.pings, bootstrap_servers=broker.bootstrap, group_id=f"g{unique}", auto_offset_reset="earliest",
        session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )
    passed = []
    for record in _drain(consumer, 11):
        outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                         now=intake_clock(record.timestamp, time.time()))
        if isinstance(outcome, Rejected):
            send_dead_letter(producer, topics.dead_letter, outcome)
        else:
            passed.append(outcome)
    producer.flush()
    consumer.close()

    assert sorted(p.event_id for p in passed) == sorted(f"e{i}" for i in range(10))
    dead = KafkaConsumer(topics.dead_letter, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    letters = [Rejected.from_bytes(r.value) for r in _drain(dead, 1)]
    dead.close()
    producer.close()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.raw == b'{"type":"ping","event_id":"x","lat":"north"}'
    assert letter.topic == topics.pings and letter.key == b"p9"
    assert "ping.lat" in letter.reason and "ping.ts: Field required" in letter.reason
