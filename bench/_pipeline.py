"""Helpers the pipeline benches share (`bench.throughput`, `bench.latency`, `bench.live`, `bench.scale`,
`bench.web`, `bench.residents`): topics under a fresh prefix, a worker's configuration, a city
published to an embedded broker, the bare aiokafka loop every worker figure is held against, and
reading and classifying the codes a run published. Not a bench itself (`python -m bench` skips
modules whose name starts with `_`)."""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from codes import Algorithm, SigningKey, generate_signing_key
from healthcode.broker import EmbeddedBroker
from scoring.rules import LEVEL_CODE, load_rule_set
from scoring.timeline import Line, fold, level_at, record_key
from simulators.config import DiseaseConfig, HealthConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import KafkaSink, Pacer, Publisher
from simulators.run import Simulation
from streams.eventtime import NEVER
from streams.step import WorkerConfig
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[1] / "rules"
PARTITIONS = 4


class NewestOnly(Pacer):
    """No pacing; remembers the newest event time published (what the worker must settle to)."""

    newest: int = NEVER

    def wait_for(self, event_time: int | None) -> None:
        if event_time is not None:
            self.newest = max(self.newest, event_time)


def bench_topics(label: str) -> Topics:
    return Topics(prefix=f"bench-{label}-{uuid.uuid4().hex[:8]}.")


def worker_config(bootstrap: str, topics: Topics, key: SigningKey) -> WorkerConfig:
    return WorkerConfig(
        bootstrap=bootstrap, topics=topics, group=f"{topics.prefix}workers",
        rules=load_rule_set(RULES / "default.yaml"), keys=[key], partitions=PARTITIONS,
    )


def quick_only(argv: list[str] | None, doc: str | None, quick: str) -> bool:
    """Parse a bench's command line that takes `--quick` alone (described by `quick`); whether it was given."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser.parse_args(argv).quick


def signing_key() -> SigningKey:
    """A throwaway Ed25519 key, valid from an hour ago for 30 days."""
    now = int(time.time())
    return generate_signing_key(Algorithm.EDDSA, now - 3600, now + 30 * 86400)


@contextmanager
def scratch_broker() -> Iterator[tuple[Path, EmbeddedBroker]]:
    """A scratch directory and an embedded broker logging into it, both gone afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        with EmbeddedBroker(log_dir=base) as broker:
            yield base, broker


@dataclass(frozen=True)
class PublishedCity:
    """A simulated city's events, recorded in `events` and published: how many, the newest event time."""

    events: Path
    count: int
    newest: int
    seconds: float


def publish_lines(bootstrap: str, topics: Topics, lines: list[bytes]) -> None:
    """Publish recorded events as fast as the broker takes them."""
    sink = KafkaSink(bootstrap)
    try:
        Publisher(sink.send, topics, Pacer(None)).publish(lines)
    finally:
        sink.close()


def worker_settings(bootstrap: str, topics: Topics, keys: Path, data: Path, **more: str) -> dict[str, str]:
    """The `HEALTHCODE_*` settings of a `healthcode worker` process on `topics` (its own group), plus `more`."""
    return {
        "HEALTHCODE_CONFIG": "", "HEALTHCODE_BROKER": f"kafka://{bootstrap}", "HEALTHCODE_TOPIC_PREFIX": topics.prefix,
        "HEALTHCODE_PARTITIONS": str(PARTITIONS), "HEALTHCODE_GROUP": f"{topics.prefix}workers",
        "HEALTHCODE_KEY_DIR": str(keys), "HEALTHCODE_RULES_FILE": str(RULES / "default.yaml"),
        "HEALTHCODE_DATA_DIR": str(data), **more,
    }


def publish_city(bootstrap: str, topics: Topics, city: SimulationConfig, directory: Path) -> PublishedCity:
    """Simulate `city`, record it under `directory` and publish every event as fast as the broker takes it."""
    sink = KafkaSink(bootstrap)
    pacer = NewestOnly(None)
    publisher = Publisher(sink.send, topics, pacer)
    start = time.perf_counter()
    try:
        events = write_run(Simulation(city), directory, also=publisher.publish_chunk)
    finally:
        sink.close()
    return PublishedCity(events, sum(publisher.sent.values()), pacer.newest, time.perf_counter() - start)


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:>9,.0f} events/s  ({seconds:.2f} s)"


async def bare_loop(bootstrap: str, topics: Topics, expected: int, out_topic: str) -> int:
    """Read every input partition from the beginning and produce each value to `out_topic`."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    await producer.start()
    await consumer.start()
    try:
        consumer.assign(
            [TopicPartition(t, p) for t in (topics.pings, topics.visits) for p in range(PARTITIONS)]
            + [TopicPartition(topics.areas, 0)]
        )
        await consumer.seek_to_beginning()
        seen = 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for record in records:
                    await producer.send(out_topic, record.value, key=record.key)
                    seen += 1
        await producer.flush()
        return seen
    finally:
        await consumer.stop()
        await producer.stop()


def create_topic(bootstrap: str, name: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream")
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()


def outbreak(residents: int) -> SimulationConfig:
    """A city where levels change often enough to give many latency samples in a short run."""
    return SimulationConfig(
        residents=residents, days=1, seed=13,
        disease=DiseaseConfig(initial_infections=residents // 10, latent_days=0.5, presymptomatic_days=0.5),
        health=HealthConfig(
            background_fever_per_day=0.05, clinic_visit=1.0, clinic_delay_days=0.2,
            screening_every_days=1, screening_share=0.3,
        ),
    )


def read_code_records(bootstrap: str, topics: Topics, idle_s: float = 1.0) -> list[tuple[dict, int]]:
    """(code record, Kafka timestamp ms) of every code record on the codes topic, in partition order."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as Partition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    out = []
    try:
        partitions = [Partition(topics.codes, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batch = consumer.poll(timeout_ms=200)
            if batch:
                quiet_since = time.monotonic()
            for records in batch.values():
                for record in records:
                    data = orjson.loads(record.value)
                    if data.get("type") == "code":
                        out.append((data, record.timestamp))
    finally:
        consumer.close()
    return out


OWN_RULES = frozenset({"confirmed_case", "fever_clinic"})
"""Rules a person's own event triggers (a positive test, a diagnosis, a fever clinic visit)."""
KINDS = ("own-event escalation", "contact escalation, case known after the contact",
         "contact escalation, contact after the case was known", "de-escalation", "restatement")
ESCALATIONS = KINDS[:3]


def code_kinds(records: list[tuple[dict, int]]) -> list[str]:
    """What each code record was: a person's level raised by their own event or by a contact or area,
    lowered, or restated (same level: a change or correction of reasons, or a re-issue). A person's
    records are in publish order within their partition and fold into their timeline, each superseding
    from its moment on (`scoring.timeline`); a record is compared with the level shown at its moment.
    It raises the level only if no earlier record ever showed that level there: a correction run
    states the settled timeline from its first difference and then the early escalations after it
    again (the red a fever-clinic case was shown at once, restated after a reason-only line just
    before it), and bad news given already is not given again.

    A contact (or area) escalation is one of two kinds: the case (designation) became known
    after every contact behind it, whose stays had arrived (the issue's "contact with a newly
    known case"), or some contact went on to the moment the case was known or after, so
    presence knows its minutes only once the stay has closed (a contact max gap with no ping)."""
    shown: dict[str, list[list[Line]]] = {}
    """Per person, the timeline after each of their records so far (a reader may have seen any)."""
    kinds = []
    for record, _ in records:
        line = Line(record_key(record), record)
        seen = shown.setdefault(record["person"], [[]])
        level, now = LEVEL_CODE[line.level], LEVEL_CODE[level_at(seen[-1], line.at)]
        if level > max(LEVEL_CODE[level_at(lines, line.at)] for lines in seen):
            at = record["assessed_at"]
            own = any(r["rule"] in OWN_RULES and r["since"] == at for r in record["reasons"])
            contacts = [e for r in record["reasons"] for e in r.get("evidence", ()) if "last_at" in e]
            backward = bool(contacts) and all(e["last_at"] < at for e in contacts)
            kinds.append(KINDS[0] if own else KINDS[1] if backward else KINDS[2])
        else:
            kinds.append(KINDS[3] if level < now else KINDS[4])
        lines = list(seen[-1])
        fold(lines, line)
        seen.append(lines)
    return kinds


def spread(label: str, milliseconds: np.ndarray) -> None:
    if milliseconds.size:
        p50, p99 = np.percentile(milliseconds / 1000, [50, 99])
        worst = milliseconds.max() / 1000
        print(f"    {label} ({milliseconds.size:,}): p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s")

