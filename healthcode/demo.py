"""The end-to-end demo: a simulated city through the real pipeline to signed, verified codes.

Steps: start the embedded broker and create the topics; simulate a small city with
injected faults; start two workers; publish the first half of the city at full
speed, then a contrasting rule set that takes effect half way, then the rest; wait
until the workers have published every level change; check the published timeline
against replay of the recorded file under the same rules; scan one code from its QR
image. Everything started is stopped, also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image

from codes import Algorithm, Level, SigningKey, generate_signing_key, read_qr, render_qr, verify
from codes.trust import TrustList
from healthcode.broker import EmbeddedBroker
from scoring.events import EventError, decode_event
from scoring.replay import replay_file
from scoring.rules import RuleSet, load_rule_set
from scoring.timeutil import format_rfc3339, to_epoch
from simulators.config import FaultConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import kafka_publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, read_codes
from streams.deadletter import Rejected
from streams.issuing import timeline_entry
from streams.rulebook import rule_set_message
from streams.topics import Topics
from streams.worker import Worker, WorkerConfig

Say = Callable[[str], None]
PARTITIONS = 4
WORKERS = 2


@dataclass
class DemoSummary:
    """What the demo did, for the closing table."""

    residents: int = 0
    infections: int = 0
    cases_detected: int = 0
    published: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    rule_change: str = ""
    codes_by_level: Counter[str] = field(default_factory=Counter)
    changed_at_switch: int = 0
    qr_verdict: str = ""
    replay_agrees: bool = False
    seconds: float = 0.0


class _Workers:
    """Workers sharing one event loop on a thread of their own."""

    def __init__(self, configs: list[WorkerConfig]) -> None:
        self.workers = [Worker(config) for config in configs]
        self._stop = asyncio.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        await asyncio.gather(*(worker.run(self._stop) for worker in self.workers))

    def settled_through(self) -> int:
        owning = [w for w in self.workers if w.view.owned]
        return min((w.final_at for w in owning), default=-1)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def _event_time(line: bytes) -> int | None:
    try:
        return to_epoch(decode_event(line).ts)
    except EventError:
        return None


def _switched(path: Path, at: int) -> tuple[RuleSet, str]:
    document = yaml.safe_load(path.read_text())
    document["valid_from"] = format_rfc3339(at)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return RuleSet.from_yaml_text(text, f"{path.name} from {format_rfc3339(at)}"), text


def run_demo(
    workdir: Path, rules_path: Path, switch_to: Path, residents: int, days: int, seed: int, say: Say
) -> DemoSummary:
    """Run the whole demo in `workdir` (emptied first); returns its summary."""
    began = time.perf_counter()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    summary = DemoSummary(residents=residents)
    rules = load_rule_set(rules_path)
    config = SimulationConfig(residents=residents, days=days, seed=seed, faults=FaultConfig(share=0.005))
    simulation = Simulation(config)
    events_file = write_run(simulation, workdir / "city")
    facts = simulation.summary()
    summary.infections, summary.cases_detected = int(facts["infections"]), int(facts["cases_detected"])
    lines = events_file.read_bytes().splitlines()
    times = [t for t in map(_event_time, lines) if t is not None]
    start, end = min(times), max(times)
    switch = start + (end - start) // 2
    second, second_text = _switched(switch_to, switch)
    summary.rule_change = f"{rules.ref} -> {second.ref} at {format_rfc3339(switch)}"
    say(f"simulated {residents:,} residents x {days} days: {len(lines):,} events, "
        f"{summary.infections} infections, {summary.cases_detected} cases detected")

    now = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, now - 60, now + 90 * 86400)
    with EmbeddedBroker(log_dir=workdir) as broker:
        say(f"embedded broker ready at {broker.bootstrap}")
        topics = Topics()
        create_topics(broker.bootstrap, topics, partitions=PARTITIONS)
        configs = [
            WorkerConfig(bootstrap=broker.bootstrap, topics=topics, group="demo-workers", rules=rules, keys=[key],
                         partitions=PARTITIONS, issuer="healthcode-demo", lateness_s=86400)
            for _ in range(WORKERS)
        ]
        workers = _Workers(configs)
        try:
            say(f"{WORKERS} workers started, sharing {PARTITIONS} partitions")
            summary.published = _publish_live(broker.bootstrap, topics, lines, switch, second, second_text, say)
            _wait(workers, end, say)
        finally:
            workers.stop()
        records = list(read_codes(broker.bootstrap, topics, idle_s=2.0))
        summary.dead_lettered = _dead_letters(broker.bootstrap, topics)
    say("workers and broker stopped")

    expected = replay_file(events_file, [rules, second]).timeline
    published = [timeline_entry(r) for r in distinct_changes(records)]
    summary.replay_agrees = published == [c.to_json() for c in expected] and len(published) == len(records)
    summary.codes_by_level = Counter(r["level"] for r in records)
    summary.changed_at_switch = sum(1 for c in expected if c.at == switch)
    say(f"{len(records):,} codes published; replay of the recorded file under the same rules agrees: "
        f"{'yes' if summary.replay_agrees else 'NO'}")
    _scan_one(workdir, records, key, summary, say)
    summary.seconds = time.perf_counter() - began
    return summary


def _publish_live(bootstrap: str, topics: Topics, lines: list[bytes], switch: int, rules: RuleSet, text: str,
                  say: Say) -> int:
    """The city's first half, then the rule set, then the rest: a rule change while the stream runs."""
    from kafka import KafkaProducer

    first = [line for line in lines if (_event_time(line) or 0) < switch]
    rest = [line for line in lines if (_event_time(line) or 0) >= switch]
    publisher, sink = kafka_publisher(bootstrap, topics, speed=None)
    try:
        publisher.publish(first)
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topics.rules, key=rules.ref.encode(), value=rule_set_message(rules, text)).get(30)
        producer.close()
        say(f"published {len(first):,} events, then rule set {rules.ref} (in force from {format_rfc3339(switch)})")
        publisher.publish(rest)
        say(f"published the remaining {len(rest):,} events")
    finally:
        sink.close()
    return len(first) + len(rest)


def _wait(workers: _Workers, end: int, say: Say, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while workers.settled_through() < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the workers did not settle through {format_rfc3339(end)} in {timeout:.0f} s")
        time.sleep(0.5)
    say(f"workers settled through {format_rfc3339(end)}")


def _dead_letters(bootstrap: str, topics: Topics) -> Counter[str]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    partition = TopicPartition(topics.dead_letter, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    kinds: Counter[str] = Counter(Rejected.from_bytes(record.value).kind for record in consumer)
    consumer.close()
    return kinds


def _scan_one(workdir: Path, records: list[dict], key: SigningKey, summary: DemoSummary, say: Say) -> None:
    restricted = [r for r in records if r["level"] != "green"]
    if not restricted:
        summary.qr_verdict = "no code to show (nobody was yellow or red)"
        return
    sample = restricted[-1]
    image = workdir / "code.png"
    image.write_bytes(render_qr(sample["code"], "png"))
    scanned = read_qr(Image.open(image))[0]
    trust = TrustList.of([key.info])
    at = int(time.time()) + 60
    anywhere = verify(scanned, trust, at=at, admit=tuple(Level))
    green_only = verify(scanned, trust, at=at, admit=(Level.GREEN,))
    summary.qr_verdict = (
        f"{sample['level']} code read from {image.name}: {anywhere.reason.value}; "
        f"at a green-only gate: {green_only.reason.value}"
    )
    say(f"scanned {image.name}: {anywhere.reason.value}, green-only gate: {green_only.reason.value}")
