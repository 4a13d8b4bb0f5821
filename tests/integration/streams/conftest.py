"""Fixtures for pipeline tests: a published simulated city and a signing key, on the session broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from codes import Algorithm, SigningKey, generate_signing_key
from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerProcess
from scoring.replay import ReplayResult, replay_file
from scoring.rules import load_rule_set
from simulators.config import FaultConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import kafka_publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.step import WorkerConfig
from streams.testing import BackgroundWorker
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
PARTITIONS = 3


@dataclass
class PublishedCity:
    topics: Topics
    events: Path
    faults: Path


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    now = int(time.time())
    return generate_signing_key(Algorithm.EDDSA, now - 3600, now + 30 * 86400)


CITY = SimulationConfig(residents=160, days=3, seed=5, faults=FaultConfig(share=0.01))


def publish_city(bootstrap: str, directory: Path, topics: Topics) -> PublishedCity:
    """Create `topics` and publish the small city with faults to them; its files go to `directory`."""
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    publisher, sink = kafka_publisher(bootstrap, topics, speed=None)
    try:
        events = write_run(Simulation(CITY), directory, also=publisher.publish_chunk)
    finally:
        sink.close()
    return PublishedCity(topics, events, directory / "faults.jsonl")


def worker_settings(bootstrap: str, topics: Topics, group: str, key_dir: Path) -> dict[str, str]:
    """The `HEALTHCODE_*` settings of a `healthcode worker` process on these topics (no late events)."""
    return {
        "HEALTHCODE_BROKER": f"kafka://{bootstrap}",
        "HEALTHCODE_TOPIC_PREFIX": topics.prefix,
        "HEALTHCODE_PARTITIONS": str(PARTITIONS),
        "HEALTHCODE_GROUP": group,
        "HEALTHCODE_KEY_DIR": str(key_dir),
        "HEALTHCODE_RULES_FILE": str(RULES),
        "HEALTHCODE_ALLOWED_LATENESS": "2d",
        "HEALTHCODE_IDLE_TIMEOUT": "2",
    }


@pytest.fixture(scope="session")
def city_publisher() -> Callable[[str, Path, Topics], PublishedCity]:
    """`publish_city`, for fixtures of a wider scope than `published_city`."""
    return publish_city


@pytest.fixture(scope="session")
def settings_for() -> Callable[[str, Topics, str, Path], dict[str, str]]:
    """`worker_settings`, for fixtures of a wider scope than `spawn`."""
    return worker_settings


@pytest.fixture
def published_city(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory, unique: str) -> PublishedCity:
    """A small city with 1% injected faults, published under a prefix of its own (so are its codes)."""
    return publish_city(broker.bootstrap, tmp_path_factory.mktemp("city"), Topics(prefix=f"t{unique}."))


@pytest.fixture
def unpublished_city(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory, unique: str) -> PublishedCity:
    """The same city written to a file only, with its topics created: the test publishes it."""
    directory = tmp_path_factory.mktemp("city")
    topics = Topics(prefix=f"u{unique}.")
    create_topics(broker.bootstrap, topics, partitions=PARTITIONS)
    events = write_run(Simulation(CITY), directory)
    return PublishedCity(topics, events, directory / "faults.jsonl")


@pytest.fixture
def replayed(published_city: PublishedCity) -> ReplayResult:
    """What replay makes of the published file: the timeline the stream must equal."""
    return replay_file(published_city.events, load_rule_set(RULES))


@pytest.fixture
def key_dir(signing_key: SigningKey, tmp_path: Path) -> Path:
    """A key directory holding the test signing key, for workers run as processes."""
    from codes.keystore import save_key

    directory = tmp_path / "keys"
    save_key(directory, signing_key)
    return directory


@pytest.fixture
def start_worker(broker: EmbeddedBroker, signing_key: SigningKey) -> Iterator:
    running: list[BackgroundWorker] = []

    def start(topics: Topics, group: str, **settings: Any) -> BackgroundWorker:
        """A worker on `topics`; `settings` override `WorkerConfig` fields."""
        config = WorkerConfig(
            bootstrap=broker.bootstrap, topics=topics, group=group, rules=load_rule_set(RULES),
            keys=[signing_key], partitions=PARTITIONS, lateness_s=2 * 86400, idle_s=2.0,
        )
        config = replace(config, **settings)
        worker = BackgroundWorker(config)
        running.append(worker)
        return worker

    yield start
    for worker in running:
        worker.stop()


@pytest.fixture
def partitions() -> int:
    """Partitions of the person-keyed topics in these tests."""
    return PARTITIONS


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Starts `healthcode worker` processes with the given settings (logs in tmp_path); stops them after the test."""
    started: list[WorkerProcess] = []

    def start(settings: dict[str, str]) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def spawn(
    broker: EmbeddedBroker, published_city, key_dir: Path, unique: str,
    worker_processes: Callable[[dict[str, str]], WorkerProcess],
) -> Callable[[], WorkerProcess]:
    settings = worker_settings(broker.bootstrap, published_city.topics, f"g{unique}", key_dir)
    return lambda: worker_processes(settings)
