"""The end-to-end demo: a simulated city through the real pipeline to signed, verified codes.

Steps: start the embedded broker and create the topics; simulate a small city with
injected faults; start two worker processes; publish the first half of the city at full
speed, then a contrasting rule set that takes effect half way, then the rest; wait
until the workers have published every level change; check the published timeline
against replay of the recorded file under the same rules; scan one code from its QR
image. Everything started is stopped, also on Ctrl-C or failure.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml
from PIL import Image

from codes import Algorithm, Level, SigningKey, generate_signing_key, read_qr, render_qr, verify
from codes.trust import TrustList
from codes.access import resident_token
from codes.keystore import resident_secrets, save_key
from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerProcess, settled, wait_until
from scoring.events import EventError, decode_event
from scoring.replay import level_changes, replay_file, write_timeline
from scoring.rules import RuleSet, load_rule_set
from scoring.timeutil import format_rfc3339, to_epoch
from simulators.config import FaultConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import kafka_publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, redundant, read_codes
from streams.deadletter import read_letter
from streams.reading import read_from_start
from streams.issuing import timeline_entry
from streams.rulebook import rule_set_message
from streams.topics import Topics

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
    resident_verdict: str = ""
    replay_agrees: bool = False
    seconds: float = 0.0


def _event_time(line: bytes) -> int | None:
    try:
        return to_epoch(decode_event(line).ts)
    except EventError:
        return None


def _person(line: bytes) -> str | None:
    try:
        return getattr(decode_event(line), "person", None)
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
    save_key(workdir / "keys", key)
    with EmbeddedBroker(log_dir=workdir) as broker:
        say(f"embedded broker ready at {broker.bootstrap}")
        topics = Topics()
        create_topics(broker.bootstrap, topics, partitions=PARTITIONS)
        settings = {
            "HEALTHCODE_BROKER": f"kafka://{broker.bootstrap}", "HEALTHCODE_PARTITIONS": str(PARTITIONS),
            "HEALTHCODE_KEY_DIR": str(workdir / "keys"), "HEALTHCODE_RULES_FILE": str(rules_path),
            "HEALTHCODE_GROUP": "demo-workers", "HEALTHCODE_ISSUER": "healthcode-demo",
            "HEALTHCODE_ALLOWED_LATENESS": "1d",
            # Both workers keep their status files here, side by side, as workers on one machine do.
            "HEALTHCODE_DATA_DIR": str(workdir / "data"),
        }
        workers = [WorkerProcess(settings, workdir / f"worker-{n}.log") for n in range(WORKERS)]
        try:
            wait_until(workers, lambda states: sorted(p for st in states for p in st["partitions"])
                       == list(range(PARTITIONS)), 120, "share the partitions")
            say(f"{WORKERS} worker processes share {PARTITIONS} partitions")
            summary.published = _publish_live(broker.bootstrap, topics, lines, switch, second, second_text,
                                              workers, say)
            wait_until(workers, lambda states: settled(states, PARTITIONS, format_rfc3339(end)), 600,
                       "publish every level change")
            say(f"workers settled through {format_rfc3339(end)}")
            records = list(read_codes(broker.bootstrap, topics, idle_s=2.0))
            fetched = _residents_ask(workers[0], workdir / "keys", lines, records)
        finally:
            for worker in workers:
                worker.stop()
        summary.dead_lettered = _dead_letters(broker.bootstrap, topics)
    say("workers and broker stopped")

    expected = replay_file(events_file, [rules, second]).timeline
    published = [timeline_entry(r) for r in distinct_changes(records)]
    write_timeline(expected, workdir / "replay-timeline.jsonl")
    (workdir / "codes.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    summary.replay_agrees = published == [c.to_json() for c in expected] and not redundant(records)
    summary.codes_by_level = Counter(r["level"] for r in records)
    summary.changed_at_switch = sum(1 for c in level_changes(expected) if c.at == switch)
    say(f"{len(records):,} codes published; replay of the recorded file under the same rules agrees: "
        f"{'yes' if summary.replay_agrees else 'NO'}")
    _check_fetched(workdir, fetched, key, summary, say)
    summary.seconds = time.perf_counter() - began
    return summary


def _publish_live(bootstrap: str, topics: Topics, lines: list[bytes], switch: int, rules: RuleSet, text: str,
                  workers: list[WorkerProcess], say: Say) -> int:
    """The city's first half, then the rule set, then the rest: a rule change while the stream runs.

    The rest waits until every worker knows the new rule set: published after events
    past its `valid_from`, it would make codes already issued under the old rules stale.
    """
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
        wait_until(workers, lambda states: all(rules.ref in st["rule_sets"] and st["ready"] for st in states),
                   120, f"load {rules.ref}")
        publisher.publish(rest)
        say(f"published the remaining {len(rest):,} events")
    finally:
        sink.close()
    return len(first) + len(rest)


def _dead_letters(bootstrap: str, topics: Topics) -> Counter[str]:
    letters = (read_letter(record.value) for record in read_from_start(bootstrap, topics.dead_letter, idle_s=2.0))
    return Counter(letter.kind for letter in letters if letter is not None)


def _residents_ask(worker: WorkerProcess, keydir: Path, lines: list[bytes], records: list[dict]) -> dict[str, dict]:
    """A resident whose level never changed, and the last one restricted, ask one worker for their
    codes with their own tokens (the worker forwards to the owner of their partition)."""
    changed = {record["person"] for record in records}
    never = sorted({person for person in map(_person, lines) if person} - changed)
    restricted = [record["person"] for record in records if record["level"] != "green"]
    picks = {"never changed level": never[:1], "restricted last": restricted[-1:]}
    secret = resident_secrets(keydir)[0]
    return {label: worker.resident_code(person, resident_token(secret, person))
            for label, chosen in picks.items() for person in chosen}


def _check_fetched(workdir: Path, fetched: dict[str, dict], key: SigningKey, summary: DemoSummary, say: Say) -> None:
    """Verify the fetched codes as a checkpoint would: the green one as text, the restricted one from its QR."""
    trust = TrustList.of([key.info])
    at = int(time.time())
    green = fetched.get("never changed level")
    if green is None:
        summary.resident_verdict = "no resident without a level change"
    else:
        verdict = verify(green["code"], trust, at=at, admit=(Level.GREEN,))
        summary.resident_verdict = (f"{green['person']} (never changed level) fetched a {green['level']} code "
                                    f"valid until {green['expires_at']}: {verdict.reason.value} at a green-only gate")
        say(f"resident {summary.resident_verdict}")
    restricted = fetched.get("restricted last")
    if restricted is None:
        summary.qr_verdict = "no code to show (nobody was yellow or red)"
        return
    image = workdir / "code.png"
    image.write_bytes(render_qr(restricted["code"], "png"))
    scanned = read_qr(Image.open(image))[0]
    anywhere = verify(scanned, trust, at=at, admit=tuple(Level))
    green_only = verify(scanned, trust, at=at, admit=(Level.GREEN,))
    summary.qr_verdict = (
        f"{restricted['level']} code of the last resident restricted, read from {image.name}: "
        f"{anywhere.reason.value}; at a green-only gate: {green_only.reason.value}"
    )
    say(f"scanned {image.name}: {anywhere.reason.value}, green-only gate: {green_only.reason.value}")
