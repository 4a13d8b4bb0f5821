"""Workers killed with SIGKILL and restarted, or replaced by another: nothing lost, nothing published twice."""

from __future__ import annotations

import random
import time

from healthcode.broker import EmbeddedBroker
from healthcode.workers import settled, wait_until
from scoring.timeutil import format_rfc3339
from streams.codes_reader import distinct_changes, read_codes
from streams.issuing import timeline_entry
from streams.testing import assert_each_record_changes_what_is_shown

def _settled(workers: list, through: str, partitions: int) -> None:
    wait_until(workers, lambda states: settled(states, partitions, through), 150, f"settle through {through}")


def _published(broker: EmbeddedBroker, topics) -> tuple[list[dict], list[dict]]:
    records = list(read_codes(broker.bootstrap, topics, idle_s=2.0))
    return records, [timeline_entry(r) for r in distinct_changes(records)]


def _through(replayed) -> str:
    return format_rfc3339(max(c.at for c in replayed.timeline))


def test_a_worker_killed_twice_mid_stream_resumes_with_nothing_lost_or_published_twice(
    broker: EmbeddedBroker, published_city, replayed, spawn, partitions
) -> None:
    chance = random.Random(11)
    for _ in range(2):
        worker = spawn()
        time.sleep(chance.uniform(3.0, 9.0))
        worker.kill()
    survivor = spawn()
    _settled([survivor], _through(replayed), partitions)
    records, timeline = _published(broker, published_city.topics)
    assert_each_record_changes_what_is_shown(records)
    assert timeline == [c.to_json() for c in replayed.timeline]


def test_when_one_of_two_workers_dies_the_other_takes_its_partitions_and_the_result_is_exact(
    broker: EmbeddedBroker, published_city, replayed, spawn, partitions
) -> None:
    first, second = spawn(), spawn()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [first.status(), second.status()]
        if all(s and s["ready"] and s["partitions"] for s in states):
            break
        time.sleep(0.5)
    time.sleep(2.0)
    first.kill()
    _settled([second], _through(replayed), partitions)
    records, timeline = _published(broker, published_city.topics)
    assert_each_record_changes_what_is_shown(records)
    assert timeline == [c.to_json() for c in replayed.timeline]


def test_an_unsplit_worker_killed_after_a_snapshot_resumes_from_it_and_the_result_is_exact(
    broker: EmbeddedBroker, published_city, replayed, key_dir, unique, worker_processes, settings_for, partitions,
    tmp_path,
) -> None:
    settings = settings_for(broker.bootstrap, published_city.topics, f"g{unique}", key_dir)
    # Unsplit: one snapshot per worker (staged, every stage's: test_stages_on_broker.py).
    settings |= {"HEALTHCODE_CONFIG": "", "HEALTHCODE_DATA_DIR": str(tmp_path / "data"), "HEALTHCODE_SNAPSHOT_EVERY": "1",
                 "HEALTHCODE_STAGES": "false"}
    first = worker_processes(settings)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "data" / "snapshots").glob("*/*/snapshot-*.bin")):
        first.check_running()
        assert time.monotonic() < deadline, "no snapshot written"
        time.sleep(0.1)
    first.kill()
    again = worker_processes(settings)
    _settled([again], _through(replayed), partitions)
    assert again.metrics().value("healthcode_snapshot_resumes_total") == 1
    assert again.metrics().value("healthcode_rebuilds_total") == 0
    records, timeline = _published(broker, published_city.topics)
    assert_each_record_changes_what_is_shown(records)
    assert timeline == [c.to_json() for c in replayed.timeline]
