"""Simulated events reach the right topics with the right keys on the real broker."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from healthcode.broker import EmbeddedBroker
from healthcode.cli.main import app
from healthcode.config import get_settings
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.publish import kafka_publisher, route
from simulators.run import Simulation
from streams.admin import create_topics
from streams.topics import Topics


def _small(seed: int) -> SimulationConfig:
    return SimulationConfig.model_validate(
        {
            "residents": 150,
            "days": 1,
            "seed": seed,
            "mobility": {"ping_interval_minutes": 60},
            "faults": {"share": 0.02},
        }
    )


def _drain(topics: Topics, bootstrap: str, want: int) -> list:
    """Read the input topics from the start by assigning partitions (no group join to wait for)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    records: list = []
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics.inputs() for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for _ in range(120):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= want:
                break
    finally:
        consumer.close()
    return records


def _expected(lines: list[bytes], topics: Topics) -> Counter:
    return Counter((route(line, topics).topic, route(line, topics).key, line) for line in lines)


def _check_arrived(records: list, lines: list[bytes], topics: Topics) -> None:
    arrived = Counter((r.topic, r.key, r.value) for r in records)
    assert arrived == _expected(lines, topics)
    partitions = defaultdict(set)
    for record in records:
        partitions[(record.topic, record.key)].add(record.partition)
    keyed = {where: seen for where, seen in partitions.items() if where[1] is not None}
    assert keyed and all(len(seen) == 1 for seen in keyed.values())
    assert {r.topic for r in records} == set(topics.inputs())


def test_a_recorded_file_is_published_line_for_line_keyed_by_person_or_area(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    topics = Topics(prefix=f"sim{unique}.")
    create_topics(broker.bootstrap, topics, partitions=3)
    events = write_run(Simulation(_small(4)), tmp_path)
    lines = events.read_bytes().splitlines()

    publisher, sink = kafka_publisher(broker.bootstrap, topics, None)
    try:
        assert publisher.publish(line + b"\n" for line in lines) == len(lines)
    finally:
        sink.close()

    _check_arrived(_drain(topics, broker.bootstrap, len(lines)), lines, topics)


def _healthcode(arguments: list[str], broker: EmbeddedBroker, topics: Topics, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HEALTHCODE_BROKER", f"kafka://{broker.bootstrap}")
    monkeypatch.setenv("HEALTHCODE_TOPIC_PREFIX", topics.prefix)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, arguments)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result


def test_simulate_with_publish_streams_what_it_writes(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = Topics(prefix=f"live{unique}.")
    create_topics(broker.bootstrap, topics, partitions=2)
    arguments = [
        "simulate",
        "--residents",
        "150",
        "--days",
        "1",
        "--seed",
        "9",
        "--ping-interval",
        "60",
        "--faults",
        "0.02",
    ]
    result = _healthcode(arguments + ["--publish", "--out", str(tmp_path)], broker, topics, monkeypatch)
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert f"published to {topics.pings}" in result.output
    _check_arrived(_drain(topics, broker.bootstrap, len(lines)), lines, topics)


def test_publish_command_sends_a_recorded_file_faults_included(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = Topics(prefix=f"rec{unique}.")
    create_topics(broker.bootstrap, topics, partitions=2)
    events = write_run(Simulation(_small(6)), tmp_path)
    lines = events.read_bytes().splitlines()
    result = _healthcode(["publish", str(events)], broker, topics, monkeypatch)
    assert f"published {len(lines):,} messages" in result.output
    _check_arrived(_drain(topics, broker.bootstrap, len(lines)), lines, topics)
