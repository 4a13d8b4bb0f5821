"""A worker whose broker goes away, or comes back without its data: honest health, quiet logs, a prompt stop.

Each test runs its own embedded broker, since it stops and restarts it under the worker.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerProcess, settled, wait_until
from scoring.replay import replay_file
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, read_codes
from streams.issuing import timeline_entry
from streams.testing import assert_each_record_changes_what_is_shown
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
STALL_TIMEOUT_S = 5
STOP_WITHIN_S = 10
"""The promise: SIGTERM or SIGINT stop a worker within this, broker or not."""
OUTAGE_S = 15
MAX_LINES_PER_S = 5
"""Without a throttle the Kafka client logged about 150 lines a second with the broker gone."""


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker of this test's own, on a fixed port so that it can be restarted there."""
    running = EmbeddedBroker(log_dir=tmp_path / "broker")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def start(own_broker: EmbeddedBroker, settings_for: Callable[..., dict[str, str]], key_dir: Path, tmp_path: Path,
          worker_processes: Callable[[dict[str, str]], WorkerProcess]) -> Callable[[Topics], WorkerProcess]:
    def start_one(topics: Topics) -> WorkerProcess:
        return worker_processes(settings_for(own_broker.bootstrap, topics, "outage", key_dir) | {
            "HEALTHCODE_CONFIG": "", "HEALTHCODE_DATA_DIR": str(tmp_path / "data"),
            "HEALTHCODE_STALL_TIMEOUT": str(STALL_TIMEOUT_S),
        })

    return start_one


def _metric(worker: WorkerProcess, name: str) -> float:
    with urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} is not among the metrics"
    return float(found.group(1))


def _ready(states: list[dict[str, Any]]) -> bool:
    return all(state["ready"] for state in states)


def _assert_stops_on(worker: WorkerProcess, sig: signal.Signals) -> None:
    worker.process.send_signal(sig)
    try:
        worker.process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop within {STOP_WITHIN_S} s of {sig.name}") from None


def test_without_their_broker_workers_are_not_ready_log_little_and_stop_on_sigterm_and_sigint(
    own_broker: EmbeddedBroker, start: Callable[[Topics], WorkerProcess], unique: str
) -> None:
    # Two workers through one outage (one per signal), rather than one outage per signal.
    topics = Topics(prefix=f"o{unique}.")
    create_topics(own_broker.bootstrap, topics, partitions=3)
    workers = [start(topics), start(topics)]
    wait_until(workers, _ready, 120, "become ready")
    logged_before = [len(worker.log.read_text(errors="replace").splitlines()) for worker in workers]

    own_broker.stop()
    gone = time.monotonic()
    states = wait_until(workers, lambda states: not any(state["ready"] for state in states), 60, "report the broker gone")
    assert all(state["reason"].startswith("broker unreachable") for state in states), states
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - gone)))
    states = wait_until(workers, lambda states: True, 10, "answer")
    for worker, state, before in zip(workers, states, logged_before):
        assert not state["ready"] and state["reason"].startswith("broker unreachable"), state
        lines = len(worker.log.read_text(errors="replace").splitlines()) - before
        seconds = time.monotonic() - gone
        assert lines <= MAX_LINES_PER_S * seconds, f"{lines} log lines in {seconds:.0f} s of outage"

    for worker, sig in zip(workers, (signal.SIGTERM, signal.SIGINT)):
        _assert_stops_on(worker, sig)
        assert worker.process.returncode == 0, worker.log_tail()


def test_a_broker_restarted_without_its_data_is_detected_reported_and_followed_by_a_rebuild(
    own_broker: EmbeddedBroker, start: Callable[[Topics], WorkerProcess], city_publisher: Callable[..., Any],
    tmp_path: Path, unique: str,
) -> None:
    topics = Topics(prefix=f"r{unique}.")
    city = city_publisher(own_broker.bootstrap, tmp_path / "city", topics)
    replayed = replay_file(city.events, load_rule_set(RULES))
    through = format_rfc3339(max(change.at for change in replayed.timeline))
    worker = start(topics)
    wait_until([worker], lambda states: settled(states, 3, through), 150, f"settle through {through}")
    assert _metric(worker, "healthcode_broker_data_losses_total") == 0
    rebuilds = _metric(worker, "healthcode_rebuilds_total")

    # The embedded broker keeps everything in memory: restarted, it has no topics and no data.
    own_broker.stop()
    own_broker.start()
    (state,) = wait_until([worker], lambda states: "lost data" in (states[0]["reason"] or ""), 60,
                          "report the data loss")
    assert not state["ready"]
    assert _metric(worker, "healthcode_broker_data_losses_total") == 1
    assert "the broker lost data" in worker.log.read_text(errors="replace")

    # The city again, on the empty broker: the worker rebuilds from it and publishes its codes anew.
    city_publisher(own_broker.bootstrap, tmp_path / "again", topics)
    wait_until([worker], lambda states: _ready(states) and settled(states, 3, through), 150,
               f"settle through {through} again")
    assert _metric(worker, "healthcode_rebuilds_total") > rebuilds
    assert _metric(worker, "healthcode_broker_data_losses_total") == 1, "one loss, reported once"
    records = list(read_codes(own_broker.bootstrap, topics, idle_s=2.0))
    timeline = [timeline_entry(record) for record in distinct_changes(records)]
    assert_each_record_changes_what_is_shown(records)
    assert timeline == [change.to_json() for change in replayed.timeline]
