"""The end-to-end demo: a simulated city through a real broker to signed, verified codes.

Steps: start the embedded broker; create the topics; simulate a small city with
injected faults and publish it; consume the input topics, dead-lettering every
message that is not a valid event; score what was consumed with the core and check
it agrees with scoring the recorded file; sign a code for every person not green,
render one as a QR image and verify it from the image. Everything started is stopped,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from codes import Algorithm, Level, generate_signing_key, read_qr, render_qr, verify
from codes.keystore import save_key
from codes.trust import TrustList
from healthcode.broker import EmbeddedBroker
from scoring.replay import read_jsonl, replay, replay_file
from scoring.rules import load_rule_set
from simulators.config import FaultConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import kafka_publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.deadletter import Rejected, send_dead_letter
from streams.intake import triage
from streams.issuing import code_record
from streams.topics import Topics

Say = Callable[[str], None]
CODE_VALIDITY_S = 12 * 3600


@dataclass
class DemoSummary:
    """What the demo did, for the closing table."""

    residents: int = 0
    infections: int = 0
    cases_detected: int = 0
    published: int = 0
    consumed: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    level_changes: int = 0
    exposures: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    codes_issued: int = 0
    qr_verdict: str = ""
    replay_agrees: bool = False
    seconds: float = 0.0


def _consume_all(bootstrap: str, topics: Topics, expected: int, say: Say) -> tuple[list[bytes], Counter[str], int]:
    """Read every message on the input topics; dead-letter the invalid ones. Returns the valid lines."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    partitions = [TopicPartition(t, p) for t in topics.inputs() for p in consumer.partitions_for_topic(t) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    valid: list[bytes] = []
    rejected: Counter[str] = Counter()
    seen = 0
    idle_deadline = time.monotonic() + 30
    while seen < expected and time.monotonic() < idle_deadline:
        polled = consumer.poll(timeout_ms=500, max_records=50_000)
        for records in polled.values():
            for record in records:
                seen += 1
                outcome = triage(record.value, record.topic, record.partition, record.offset, record.key)
                if isinstance(outcome, Rejected):
                    send_dead_letter(producer, topics.dead_letter, outcome)
                    rejected[outcome.kind] += 1
                else:
                    valid.append(record.value)
        if polled:
            idle_deadline = time.monotonic() + 30
    producer.flush()
    producer.close()
    consumer.close()
    say(f"consumed {seen:,} messages: {len(valid):,} valid, {sum(rejected.values()):,} dead-lettered")
    return valid, rejected, seen


def run_demo(workdir: Path, rules_path: Path, residents: int, days: int, seed: int, say: Say) -> DemoSummary:
    """Run the whole demo in `workdir` (emptied first); returns its summary."""
    began = time.perf_counter()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    summary = DemoSummary(residents=residents)
    rules = load_rule_set(rules_path)
    with EmbeddedBroker(log_dir=workdir) as broker:
        say(f"embedded broker ready at {broker.bootstrap}")
        topics = Topics()
        create_topics(broker.bootstrap, topics, partitions=4)
        say("topics created: " + ", ".join(topics.name(r) for r in ("pings", "visits", "areas", "dead-letter")))

        config = SimulationConfig(residents=residents, days=days, seed=seed, faults=FaultConfig(share=0.005))
        simulation = Simulation(config)
        publisher, sink = kafka_publisher(broker.bootstrap, topics, speed=None)
        try:
            events_file = write_run(simulation, workdir / "city", also=publisher.publish_chunk)
        finally:
            sink.close()
        facts = simulation.summary()
        summary.infections = int(facts["infections"])
        summary.cases_detected = int(facts["cases_detected"])
        summary.published = sum(publisher.sent.values())
        say(f"simulated {residents:,} residents x {days} days and published {summary.published:,} events")

        valid, summary.dead_lettered, summary.consumed = _consume_all(
            broker.bootstrap, topics, summary.published, say
        )
    say("broker stopped")

    streamed = replay(read_jsonl(iter(valid)), rules)
    recorded = replay_file(events_file, rules)
    summary.replay_agrees = [c.to_json() for c in streamed.timeline] == [c.to_json() for c in recorded.timeline]
    summary.duplicates = streamed.duplicates
    summary.level_changes = len(streamed.timeline)
    summary.exposures = streamed.exposures
    summary.levels = streamed.levels
    say(f"scored: {summary.level_changes:,} level changes; consumed stream and recorded file agree: "
        f"{'yes' if summary.replay_agrees else 'NO'}")

    _issue_and_verify(workdir, streamed.timeline, summary, say)
    summary.seconds = time.perf_counter() - began
    return summary


def _issue_and_verify(workdir: Path, timeline: list, summary: DemoSummary, say: Say) -> None:
    now = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, now - 60, now + 90 * 86400)
    save_key(workdir / "keys", key)
    latest = {change.person: change for change in timeline}
    records = [
        code_record(change, key, issuer="healthcode-demo", issued_at=now, validity_s=CODE_VALIDITY_S)
        for change in latest.values()
        if change.level != "green"
    ]
    summary.codes_issued = len(records)
    if not records:
        summary.qr_verdict = "no code to show (nobody is yellow or red)"
        return
    sample = records[0]
    image = workdir / "code.png"
    image.write_bytes(render_qr(sample["code"], "png"))
    scanned = read_qr(Image.open(image))[0]
    trust = TrustList.of([key.info])
    anywhere = verify(scanned, trust, at=now + 60, admit=tuple(Level))
    green_only = verify(scanned, trust, at=now + 60, admit=(Level.GREEN,))
    summary.qr_verdict = (
        f"{sample['level']} code read from {image.name}: {anywhere.reason.value} (signature and validity); "
        f"at a green-only gate: {green_only.reason.value}"
    )
    say(f"signed {len(records):,} codes; scanned {image.name}: {anywhere.reason.value}, "
        f"green-only gate: {green_only.reason.value}")
