"""Presence split by region on the broker (`HEALTHCODE_STAGES=true`): worker processes share the
ping work by partition, and the codes they publish are replay's timeline, a SIGKILL included."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerProcess, settled, wait_until
from scoring.events import Ping
from scoring.limits import EventLimits
from scoring.replay import ReplayResult, replay_file
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339
from simulators.publish import kafka_publisher
from streams.codes_reader import distinct_changes, read_codes
from streams.intake import intake_clock, triage
from streams.issuing import timeline_entry
from streams.reading import read_from_start
from streams.testing import assert_each_record_changes_what_is_shown

from tests.integration.streams.conftest import RULES, PublishedCity, worker_settings


def _staged(broker: EmbeddedBroker, city: PublishedCity, group: str, key_dir: Path) -> dict[str, str]:
    return worker_settings(broker.bootstrap, city.topics, group, key_dir) | {"HEALTHCODE_STAGES": "true"}


def _valid_pings(broker: EmbeddedBroker, city: PublishedCity) -> dict[int, int]:
    """Per `pings` partition, the messages the intake takes as pings (faults are dead-lettered)."""
    counts: dict[int, int] = {}
    for record in read_from_start(broker.bootstrap, city.topics.pings, idle_s=1.0):
        outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                         now=intake_clock(record.timestamp, time.time()), limits=EventLimits())
        counts[record.partition] = counts.get(record.partition, 0) + isinstance(outcome, Ping)
    return counts


def _through(replayed: ReplayResult) -> str:
    return format_rfc3339(max(change.at for change in replayed.timeline))


def _exact(broker: EmbeddedBroker, city: PublishedCity, replayed: ReplayResult) -> None:
    records = list(read_codes(broker.bootstrap, city.topics, idle_s=2.0))
    assert_each_record_changes_what_is_shown(records)
    assert [timeline_entry(r) for r in distinct_changes(records)] == [c.to_json() for c in replayed.timeline]


def test_two_staged_workers_each_process_only_their_partitions_pings_and_publish_the_replay_timeline(
    broker: EmbeddedBroker, unpublished_city: PublishedCity, key_dir: Path, unique: str, partitions: int,
    worker_processes: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    city = unpublished_city
    settings = _staged(broker, city, f"g{unique}", key_dir)
    workers = [worker_processes(settings) for _ in range(2)]
    states = wait_until(workers, lambda states: all(s["ready"] and s["partitions"] for s in states), 120,
                        "share the partitions")
    # Published only once both own their partitions: no rebalance re-reads a ping.
    publisher, sink = kafka_publisher(broker.bootstrap, city.topics, speed=None)
    try:
        publisher.publish(city.events.read_bytes().splitlines())
    finally:
        sink.close()
    replayed = replay_file(city.events, load_rule_set(RULES))
    wait_until(workers, lambda states: settled(states, partitions, _through(replayed)), 150, "settle")
    _exact(broker, city, replayed)
    valid = _valid_pings(broker, city)
    owned = [sorted(state["partitions"]) for state in states]
    assert sorted(p for parts in owned for p in parts) == list(range(partitions)), "each partition has one owner"
    processed = [worker.metrics().value("healthcode_events_in_total", type="ping") for worker in workers]
    assert processed == [sum(valid.get(p, 0) for p in parts) for parts in owned], (
        f"pings processed per worker {processed}, owning {owned}; valid pings per partition {valid}")
    assert all(count > 0 for count in processed)


def test_a_staged_worker_killed_mid_stream_is_replaced_and_the_timeline_equals_replay(
    broker: EmbeddedBroker, published_city: PublishedCity, replayed: ReplayResult, key_dir: Path, unique: str,
    partitions: int, worker_processes: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    settings = _staged(broker, published_city, f"g{unique}", key_dir)
    first, second = worker_processes(settings), worker_processes(settings)
    wait_until([first, second], lambda states: all(s["ready"] and s["partitions"] for s in states), 120,
               "share the partitions")
    # Killed as soon as its stays stage has taken pings: mid-stream, however fast the machine.
    deadline = time.monotonic() + 60
    while not first.metrics().value("healthcode_events_in_total", type="ping"):
        assert time.monotonic() < deadline, "the first worker took no ping"
        time.sleep(0.05)
    first.kill()
    wait_until([second], lambda states: settled(states, partitions, _through(replayed)), 150, "settle")
    _exact(broker, published_city, replayed)


def test_a_staged_worker_killed_after_its_stages_snapshots_resumes_every_stage_from_them_exactly(
    broker: EmbeddedBroker, published_city: PublishedCity, replayed: ReplayResult, key_dir: Path, unique: str,
    partitions: int, worker_processes: Callable[[dict[str, str]], WorkerProcess], tmp_path: Path,
) -> None:
    settings = _staged(broker, published_city, f"g{unique}", key_dir)
    settings |= {"HEALTHCODE_CONFIG": "", "HEALTHCODE_DATA_DIR": str(tmp_path / "data"), "HEALTHCODE_SNAPSHOT_EVERY": "1"}
    first = worker_processes(settings)
    snapshots = tmp_path / "data" / "snapshots"
    deadline = time.monotonic() + 120
    while {path.parent.name.split("-")[0] for path in snapshots.glob("*/*/snapshot-*.bin")} != {
            "worker", "stays", "presence"}:
        first.check_running()
        assert time.monotonic() < deadline, "no snapshot of every stage written"
        time.sleep(0.1)
    first.kill()
    again = worker_processes(settings)
    wait_until([again], lambda states: settled(states, partitions, _through(replayed)), 150, "settle")
    figures = again.metrics()
    assert (figures.value("healthcode_snapshot_resumes_total"), figures.value("healthcode_rebuilds_total")) == (1, 0)
    _exact(broker, published_city, replayed)
