"""The CLI against the embedded broker under hostile input and misuse: a precise answer, never a traceback or a hang.

Each test names what once went wrong. Commands run as `healthcode` processes, as the
operator runs them, under a topic prefix of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from codes import Algorithm, generate_signing_key
from codes.keystore import save_key
from healthcode.broker import EmbeddedBroker
from tests.integration.healthcode.cli_settings import RULES, cli_settings
from scoring.timeutil import parse_rfc3339
from streams.admin import create_topics, describe_layout
from streams.reading import read_from_start
from streams.topics import Topics
from streams.step import WORKER_STATUS

PARTITIONS = 3
EVENTS = [
    {"event_id": "a1", "type": "visit", "ts": "2022-04-01T09:00:00Z", "person": "p1", "facility": "Clinic",
     "kind": "fever_clinic"},
    {"event_id": "a2", "type": "ping", "ts": "2022-04-01T09:05:00Z", "person": "p2", "lat": 30.59, "lon": 114.3,
     "source": "gps"},
]


@dataclass(frozen=True)
class Cli:
    """`healthcode` configured for one broker and one topic prefix."""

    broker: EmbeddedBroker
    topics: Topics
    settings: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        clean = {name: value for name, value in os.environ.items() if not name.startswith("HEALTHCODE_")}
        return subprocess.run(
            [sys.executable, "-m", "healthcode.cli.main", *args], env={**clean, **self.settings, "COLUMNS": "200"},
            capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
        )

    def on_topic(self, topic: str) -> list[bytes]:
        return [record.value for record in read_from_start(self.broker.bootstrap, topic, idle_s=1.0)]

    def announce(self, producer: KafkaProducer, worker: str, watermark: str | None = None, **fields: object) -> None:
        """A worker status on the cases topic, as a running worker writes one every two seconds."""
        status = {"type": WORKER_STATUS, "worker": worker, "rule_set": "default@1.0.0", "rule_sets": ["default@1.0.0"],
                  "partitions": [0], "watermark": parse_rfc3339(watermark) if watermark else None,
                  "at": int(time.time()), **fields}
        producer.send(self.topics.cases, orjson.dumps(status)).get(10)


@pytest.fixture
def cli(broker: EmbeddedBroker, unique: str, tmp_path: Path) -> Cli:
    """The CLI on a prefix whose topics do not exist yet."""
    now = int(time.time())
    save_key(tmp_path / "keys", generate_signing_key(Algorithm.EDDSA, now - 3600, now + 86400))
    topics = Topics(prefix=f"hostile{unique}.")
    settings = cli_settings(broker, topics, PARTITIONS, f"g{unique}", tmp_path / "keys", tmp_path / "data")
    return Cli(broker, topics, settings)


@pytest.fixture
def created(cli: Cli) -> Cli:
    create_topics(cli.broker.bootstrap, cli.topics, partitions=PARTITIONS)
    return cli


@pytest.fixture
def producer(broker: EmbeddedBroker) -> Iterator[KafkaProducer]:
    sender = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    yield sender
    sender.close()


def _no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stderr, run.stderr


def test_publish_before_topics_create_is_refused_and_creates_no_topic(cli: Cli, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(event) for event in EVENTS) + b"\n")
    run = cli.run("publish", str(events))
    _no_traceback(run)
    assert run.returncode == 2
    assert f"no topic {cli.topics.prefix}* exists" in run.stderr and "healthcode topics create" in run.stderr
    assert describe_layout(cli.broker.bootstrap, cli.topics) == {}


def test_topics_auto_created_by_a_client_are_shown_as_they_are_and_workers_refuse_them(
    cli: Cli, producer: KafkaProducer
) -> None:
    # A client writing before `topics create`: the broker creates the topic with its own default layout.
    producer.send(cli.topics.areas, b"{}").get(10)
    auto = describe_layout(cli.broker.bootstrap, cli.topics)[cli.topics.areas]
    assert auto != 1, "the broker's default layout is what workers need: nothing to show here"

    run = cli.run("topics", "create")
    _no_traceback(run)
    assert run.returncode == 1
    assert f"exists  {cli.topics.areas} ({auto} partitions) but healthcode makes it with 1" in run.stdout
    assert f"created {cli.topics.pings} ({PARTITIONS} partitions)" in run.stdout
    assert f"workers refuse these topics: {cli.topics.areas} has {auto} partitions, workers need 1" in run.stderr

    worker = cli.run("worker")
    _no_traceback(worker)
    assert worker.returncode == 2
    assert f"{cli.topics.areas} has {auto} partitions, workers need 1" in worker.stderr


def test_publish_skips_a_line_too_large_for_a_message_and_sends_the_rest(created: Cli, tmp_path: Path) -> None:
    huge = orjson.dumps({**EVENTS[0], "event_id": "x" * 5_000_000})
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(EVENTS[0]) + b"\n" + huge + b"\n" + orjson.dumps(EVENTS[1]) + b"\n")
    run = created.run("publish", str(events))
    _no_traceback(run)
    assert run.returncode == 1
    assert f"line 2: skipped: {len(huge):,} bytes, more than the 1,000,000 a message may hold" in run.stderr
    assert "not everything was published: 1 line(s) skipped" in run.stderr
    assert created.on_topic(created.topics.visits) == [orjson.dumps(EVENTS[0])]
    assert created.on_topic(created.topics.pings) == [orjson.dumps(EVENTS[1])]


def test_rules_active_answers_while_workers_keep_announcing(created: Cli, producer: KafkaProducer) -> None:
    # Announcements every second never leave the three quiet seconds the old read waited for.
    stop = threading.Event()

    def announcing() -> None:
        while not stop.is_set():
            created.announce(producer, "worker-steady", "2022-04-02T00:00:00Z")
            stop.wait(1.0)

    announcer = threading.Thread(target=announcing)
    announcer.start()
    try:
        run = created.run("rules", "active")
    finally:
        stop.set()
        announcer.join()
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert "worker-steady" in run.stdout and "2022-04-02T00:00:00Z" in run.stdout


def test_rules_active_skips_malformed_announcements(created: Cli, producer: KafkaProducer) -> None:
    producer.send(created.topics.cases, orjson.dumps({"type": WORKER_STATUS})).get(10)
    created.announce(producer, "worker-odd", partitions="all")
    created.announce(producer, "worker-\x1b[2J[/]", "2022-04-02T00:00:00Z")
    run = created.run("rules", "active")
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert "worker-\\u001b[2J[/]" in run.stdout and "worker-odd" not in run.stdout


def test_rules_publish_refuses_a_rule_set_the_stream_has_passed_unless_forced(
    created: Cli, producer: KafkaProducer, tmp_path: Path
) -> None:
    created.announce(producer, "worker-ahead", "2022-04-02T12:00:00Z")

    refused = created.run("rules", "publish", str(RULES / "points.yaml"))
    _no_traceback(refused)
    assert refused.returncode == 1
    assert "points@1.0.0 is valid from 2020-01-01T00:00:00Z, but workers have scored up to 2022-04-02T12:00:00Z" in (
        refused.stderr
    )
    assert created.on_topic(created.topics.rules) == []

    ahead = tmp_path / "points-0403.yaml"
    shipped = (RULES / "points.yaml").read_text()
    assert "valid_from: 2020-01-01T00:00:00Z" in shipped
    ahead.write_text(shipped.replace("valid_from: 2020-01-01T00:00:00Z", "valid_from: 2022-04-03T00:00:00Z"))
    published = created.run("rules", "publish", str(ahead))
    assert published.returncode == 0, published.stderr
    assert "in force from 2022-04-03T00:00:00Z" in published.stdout

    forced = created.run("rules", "publish", str(RULES / "default.yaml"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "forced: workers were already at 2022-04-02T12:00:00Z" in forced.stdout


def test_codes_tail_escapes_control_characters_a_stranger_put_on_the_codes_topic(
    created: Cli, producer: KafkaProducer
) -> None:
    record = {"type": "code", "person": "p1\x9b2J\u202e", "level": "green"}
    producer.send(created.topics.codes, orjson.dumps(record), key=b"p1").get(10)
    run = created.run("codes", "tail", "--idle", "1")
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert "\\u009b2J\\u202e" in run.stdout and not {"\x9b", "\u202e"} & set(run.stdout)
    assert orjson.loads(run.stdout) == record
