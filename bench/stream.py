"""The real-time pipeline: one worker's end-to-end throughput against a bare aiokafka
consume-and-produce loop, event-to-code latency at a steady 2,000 events/s, and a live
rule change for 100,000 persons against the batch rescoring path, all in one run on an
embedded broker this bench starts itself.

1. Throughput. A simulated city is published (as fast as the broker takes it) under a
   unique topic prefix. Baseline: a bare loop (`AIOKafkaConsumer` assigned every input
   partition from the beginning, each value produced to an output topic) until it has
   read every published event. Then a worker (`streams.app`, on Faust) is started and
   timed from its start until it has settled through the newest event time
   (`BackgroundWorker.final_at`): group join, rebuild, decoding, event-time ordering, contacts,
   scoring, signing and publishing codes, and the idle timeout that lets the last
   watermark through (a worker cannot know an input is finished before it falls silent).
   Goals: at least 10,000 events/s and at least 0.5 of the bare loop.
2. Latency. A worker is started on an empty outbreak city's topics and, once it owns
   its partitions, the city's events are published at a steady 2,000 events/s (each
   message's Kafka timestamp is set at send). For every code record the event-to-code
   latency is the code message's Kafka timestamp minus the Kafka timestamp of the latest
   input event at or before the code's `assessed_at` (the input with the largest event
   time not after it; among ties, the one published last), split by kind: a person's own
   event raising their level, a contact or area raising it, a level lowered, a level
   restated (reasons changed or corrected, or an escalation stated again inside a correction:
   a record raises a level only where no earlier record showed it). Goal: escalations p99 under 1 s.
   What this includes, and the second latency printed to separate it: a change at
   event time `a` is settled only at the first scorer tick boundary `b` (a multiple of
   the tick, 15 min) with `b >= a + tick + contact max gap + 1` (an exposure found at a
   tick can have become known that far back, see `scoring.city`), and the scorer
   reaches `b` only when the aligned watermark (newest event time minus the allowed
   lateness, least over the input partitions) does. So a code cannot leave before the
   inputs are 3,301-4,200 s of EVENT time past its moment with the default rules:
   printed in wall time at this rate, it is a property of the event-time semantics,
   not of the worker's speed (in live mode, where event time is wall time, it is about
   an hour). "The worker's own delay" counts instead from the first input published
   past that point: polling, case progress round trips, scoring, signing and producing
   (a quiet partition no longer holds the watermark: once its consumer is caught up it
   counts as the newest event time minus the lateness, see `streams.eventtime`). A
   negative own delay is a code released before any input passed the hold computed
   here, because caught-up partitions let the watermark reach the newest event time
   seen minus the lateness. A change dated before the input that revealed it (a
   contact found when the case is known) counts from the input at its date, so the
   maximum overstates. Steady codes are those whose hold some input passed; the rest
   wait for the end-of-input idle timeout instead.
3. Live mode (`live=True`: event time is wall time). A few persons' past hour of pings is
   published, a worker started; then, at the wall clock, one of them tests positive and
   another visits a fever clinic. Printed: a transcript (each code on the codes topic with its
   Kafka timestamp) and per kind the latency from the deciding event's publication (a
   contact's from its case's test).
4. Rule change. 100,000 (quick: 30,000) synthetic persons (`scoring.synthetic`)
   restored into a `People` under `rules/default.yaml` and settled to just before the
   switch (not timed); then `People.rescore(points.yaml, at)` is timed against the batch
   path on the same states (`scoring.batch`: pack, evaluate, full assessments of the
   persons restricted before or after only), and signing the changed persons' code records
   (`streams.issuing.code_record`, which calls `codes.issue`) with a throwaway Ed25519 key.

    .venv/bin/python -m bench.stream            # 2,000 residents x 3 days; 30 s paced; 100,000 persons (--only latency: one part)
    .venv/bin/python -m bench.stream --quick    # 300 residents x 2 days; 6 s paced; 30,000 persons
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from codes import Algorithm, SigningKey, generate_signing_key
from healthcode.broker import EmbeddedBroker
from scoring.batch import pack_states, rescore_packed, restricted_assessments
from scoring.people import People
from scoring.rules import LEVEL_CODE, load_rule_set
from scoring.timeline import Line, fold, level_at, record_key
from scoring.synthetic import synthetic_states
from scoring.timeutil import format_rfc3339, parse_rfc3339
from simulators.config import DiseaseConfig, HealthConfig, SimulationConfig
from simulators.output import write_run
from simulators.publish import KafkaSink, Pacer, Publisher, route
from simulators.run import Simulation
from streams.admin import create_topics
from streams.eventtime import NEVER
from streams.issuing import code_record, encode_record
from streams.topics import Topics
from streams.step import WorkerConfig
from streams.testing import BackgroundWorker, MemoryLog, StepDriver, settle

RULES = Path(__file__).resolve().parents[1] / "rules"
PARTITIONS = 4
RATE = 2_000
AT = 1_650_000_000
EVENT_TYPES = ("ping", "visit", "test_result", "area_risk")


@dataclass(frozen=True)
class Size:
    """How big each section is."""

    residents: int
    days: int
    paced_residents: int
    paced_seconds: int
    persons: int


FULL = Size(residents=2_000, days=3, paced_residents=1_000, paced_seconds=30, persons=100_000)
QUICK = Size(residents=300, days=2, paced_residents=300, paced_seconds=6, persons=30_000)


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


def _events_in() -> float:
    return sum(REGISTRY.get_sample_value("healthcode_events_in_total", {"type": t}) or 0.0 for t in EVENT_TYPES)


def _rate(count: float, seconds: float) -> str:
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


def _create_topic(bootstrap: str, name: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream")
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()


def throughput(bootstrap: str, size: Size, key: SigningKey, directory: Path) -> None:
    topics = bench_topics("throughput")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    out_topic = topics.prefix + "bare-out"
    _create_topic(bootstrap, out_topic)
    sink = KafkaSink(bootstrap)
    pacer = NewestOnly(None)
    publisher = Publisher(sink.send, topics, pacer)
    start = time.perf_counter()
    try:
        city = SimulationConfig(residents=size.residents, days=size.days, seed=11)
        events_file = write_run(Simulation(city), directory, also=publisher.publish_chunk)
    finally:
        sink.close()
    events = sum(publisher.sent.values())
    print(f"simulated city: {size.residents:,} residents x {size.days} days, {events:,} events "
          f"published in {time.perf_counter() - start:.1f} s ({PARTITIONS} partitions per keyed topic)")

    start, cpu = time.perf_counter(), time.process_time()
    seen = asyncio.run(bare_loop(bootstrap, topics, events, out_topic))
    bare_s, bare_cpu = time.perf_counter() - start, time.process_time() - cpu

    in_memory(events_file, key)

    before = _events_in()
    start, cpu = time.perf_counter(), time.process_time()
    running = BackgroundWorker(worker_config(bootstrap, topics, key))
    try:
        ready = running.wait_until(lambda w: w.view.ready, timeout=60)
        settled = running.wait_until(lambda w: w.final_at >= pacer.newest, timeout=600)
    finally:
        worker_cpu = time.process_time() - cpu
        running.stop()
    worker_s = settled - start
    taken = _events_in() - before
    idle_s = running.config.idle_s
    processing_s = max(1e-9, settled - ready - idle_s)
    print(f"  bare aiokafka consume+produce (baseline): {_rate(seen, bare_s)}")
    print(f"  worker, start to settled through the newest event: {_rate(events, worker_s)}")
    print(f"    of which group join + rebuild {ready - start:.2f} s (the broker delays a new group's first "
          f"rebalance ~3 s) and the {idle_s:.1f} s idle timeout that releases the last watermark")
    print(f"    worker without those two: {_rate(events, processing_s)}")
    print(f"    valid events the worker took in: {taken:,.0f} of {events:,} published")
    # CPU time is what a busy machine does not distort: events per CPU-second is what one
    # worker on a core of its own could take (the bench thread's polling is counted too).
    print(f"  per CPU-second (load-independent): bare loop {seen / bare_cpu:,.0f} events/s ({bare_cpu:.1f} s CPU), "
          f"worker {events / worker_cpu:,.0f} events/s ({worker_cpu:.1f} s CPU)")
    ratio = bare_s / worker_s
    print(f"  ratio worker / bare loop: {ratio:.2f} start to settled, {bare_s / processing_s:.2f} without join "
          f"and idle timeout (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}; "
          f">= 10,000 events/s: {'met' if events / worker_s >= 10_000 else 'NOT met'})")


def in_memory(events: Path, key: SigningKey) -> None:
    """The pipeline's decisions alone: the same events through a `Step` on an in-memory log, no Kafka."""
    config = WorkerConfig(bootstrap="memory", topics=bench_topics("memory"), group="memory",
                          rules=load_rule_set(RULES / "default.yaml"), keys=[key], partitions=PARTITIONS)
    lines = events.read_bytes().splitlines()
    log = MemoryLog(config.topics, PARTITIONS)
    log.publish(lines)
    newest = max(t for t in (route(line, config.topics).ts for line in lines) if t is not None)
    start, cpu = time.perf_counter(), time.process_time()
    # A clock step longer than the idle timeout: the in-memory log has no backlog to wait for.
    settle([StepDriver(log, config, frozenset(range(PARTITIONS)))], newest, time.time(), step_s=config.idle_s)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    print(f"  step alone, in memory (decode, event time, contacts, scoring, signing; no Kafka): "
          f"{_rate(len(lines), wall_s)}, {len(lines) / cpu_s:,.0f} events per CPU-second")


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


def paced_publish(bootstrap: str, topics: Topics, lines: list[bytes], rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Publish `lines` at `rate` per second; returns each one's event time and Kafka timestamp (ms)."""
    from kafka import KafkaProducer

    routes = [route(line, topics) for line in lines]
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="bench-stream", acks=1, linger_ms=5)
    stamps = np.empty(len(lines), dtype=np.int64)
    start = time.monotonic()
    try:
        for index, (line, where) in enumerate(zip(lines, routes)):
            wait = start + index / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            stamps[index] = int(time.time() * 1000)
            producer.send(where.topic, key=where.key, value=line, timestamp_ms=int(stamps[index]))
        producer.flush()
    finally:
        producer.close()
    times = np.array([NEVER if where.ts is None else where.ts for where in routes], dtype=np.int64)
    return times, stamps


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


def latencies(assessed: np.ndarray, coded: np.ndarray, times: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Each code's latency (ms) from the latest input at or before its moment (`assessed`)."""
    order = np.lexsort((stamps, times))
    by_time, stamp_by_time = times[order], stamps[order]
    # The last input in event time (then in publish time) at or before each code's moment.
    return coded - stamp_by_time[np.maximum(np.searchsorted(by_time, assessed, side="right") - 1, 0)]


def releasing_inputs(release: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the first input published with event time at or after each `release` time
    (`len(times)` when none was: only the end-of-input idle timeout released it)."""
    return np.searchsorted(np.maximum.accumulate(times), release, side="left")


def _spread(label: str, milliseconds: np.ndarray) -> None:
    if milliseconds.size:
        p50, p99 = np.percentile(milliseconds / 1000, [50, 99])
        worst = milliseconds.max() / 1000
        print(f"    {label} ({milliseconds.size:,}): p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s")


def latency(bootstrap: str, lines: list[bytes], key: SigningKey) -> None:
    """Publish `lines` at `RATE` to a worker already owning its partitions; print code latencies."""
    topics = bench_topics("latency")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    config = worker_config(bootstrap, topics, key)
    running = BackgroundWorker(config)
    try:
        running.wait_until(lambda w: w.view.ready, timeout=60)
        times, stamps = paced_publish(bootstrap, topics, lines, RATE)
        newest = int(times.max())
        running.wait_until(lambda w: w.final_at >= newest, timeout=120)
    finally:
        running.stop()
    scorer = running.pipeline.step.scorer
    tick, gap, lateness = scorer.tick_s, scorer.max_gap, config.lateness_s
    wall_s = (stamps[-1] - stamps[0]) / 1000
    valid = times != NEVER
    speed = (times[valid].max() - times[valid].min()) / wall_s
    records = read_code_records(bootstrap, topics)
    assessed = np.array([parse_rfc3339(record["assessed_at"]) for record, _ in records], dtype=np.int64)
    coded = np.array([stamp for _, stamp in records], dtype=np.int64)
    kinds = np.array(code_kinds(records))
    waited = latencies(assessed, coded, times, stamps)
    # A change at moment a is settled once the scorer passes the tick boundary b (the first
    # multiple of `tick` >= a + tick + max_gap + 1) with watermark >= b - 1, i.e. once the
    # inputs reach b - 1 + lateness. Everything before that is event-time semantics.
    boundary = -(-(assessed + tick + gap + 1) // tick) * tick
    releasing = releasing_inputs(boundary - 1 + lateness, times)
    released = releasing < len(times)
    hold_low, hold_high = tick + gap + 1 + lateness, 2 * tick + gap + lateness
    print(f"  worker idle timeout {config.idle_s} s, allowed lateness {lateness} s: {len(lines):,} events "
          f"at {len(lines) / wall_s:,.0f} events/s over {wall_s:.1f} s; {len(records):,} codes")
    print(f"    event time ran {speed:,.0f}x wall time; a settled change is held until the inputs are "
          f"{hold_low:,}-{hold_high:,} "
          f"event-s past it (tick {tick} s + contact max gap {gap} s + lateness {lateness} s), "
          f"{hold_low / speed:.2f}-{hold_high / speed:.2f} s of wall time at this rate")
    _spread("event-to-code latency, all codes", waited)
    # Codes the end-of-input flush released wait for the idle timeout, not for the worker.
    steady = released | (coded < stamps[-1])
    for kind in KINDS:
        _spread(f"{kind}, event-to-code (steady)", waited[steady & (kinds == kind)])
    own = coded[released] - stamps[releasing[released]]
    _spread("code after the first input past its settling hold (the worker's own delay)", own)
    escalations = waited[steady & np.isin(kinds, ESCALATIONS)]
    if escalations.size:
        p99 = float(np.percentile(escalations, 99)) / 1000
        print(f"    goal escalations p99 < 1 s (event-to-code): {'met' if p99 < 1 else 'NOT met'}")


def live_events(start: int) -> tuple[list[bytes], list[str]]:
    """A few persons in live mode: the past hour's pings (published before the worker starts) and the
    close contacts' names. Three persons spend 40 minutes, 90 to 50 minutes ago, in one ~100 m place
    (close contacts if one is a case), a fourth is elsewhere. The decisive events (`decisive`) come
    later, stamped with the wall clock when published: the first tests positive, a fifth visits a
    fever clinic.
    """
    from scoring.events import Ping, encode_event

    def ping(index: int, person: str, at: int, lat: float, lon: float) -> bytes:
        moment = datetime.fromtimestamp(at, timezone.utc)
        return encode_event(Ping(event_id=f"live-ping-{person}-{index}", ts=moment, person=person,
                                 lat=lat, lon=lon, source="gps"))

    history = []
    for index, at in enumerate(range(start - 5400, start - 3000, 60)):
        for person in ("p-live-case", "p-live-near-1", "p-live-near-2"):
            history.append(ping(index, person, at, 31.2304, 121.4737))
        history.append(ping(index, "p-live-far", at, 31.3304, 121.5737))
    return history, ["p-live-near-1", "p-live-near-2"]


def live_ping(person: str, now: float) -> bytes:
    """A ping of `person` far from everyone, stamped `now` (the wall clock)."""
    from scoring.events import Ping, encode_event

    moment = datetime.fromtimestamp(int(now), timezone.utc)
    return encode_event(Ping(event_id=f"live-{person}-{now:.3f}", ts=moment, person=person,
                             lat=31.3304, lon=121.5737, source="gps"))


def decisive(person: str, kind: str, at: int) -> bytes:
    """A positive PCR (sampled an hour before) or a fever clinic visit, at wall-clock time `at`."""
    from scoring.events import TestResult, Visit, encode_event

    moment = datetime.fromtimestamp(at, timezone.utc)
    if kind == "positive":
        sampled = datetime.fromtimestamp(at - 3600, timezone.utc)
        return encode_event(TestResult(event_id=f"live-test-{person}-{at}", ts=moment, person=person,
                                       sampled_at=sampled, test="pcr", result="positive"))
    return encode_event(Visit(event_id=f"live-visit-{person}-{at}", ts=moment, person=person,
                              facility="clinic-1", kind="fever_clinic"))


def live(bootstrap: str, key: SigningKey, wait_s: float) -> None:
    """Live mode (`HEALTHCODE_LIVE=true`): event time is the wall clock; print a transcript and latencies."""
    from kafka import KafkaProducer

    topics = bench_topics("live")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    config = replace(worker_config(bootstrap, topics, key), live=True)
    start = int(time.time())
    history, contacts = live_events(start)
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="bench-live", acks=1, linger_ms=0)
    for line in history:
        where = route(line, topics)
        producer.send(where.topic, key=where.key, value=line)
    producer.flush()
    running = BackgroundWorker(config)
    sent: dict[str, tuple[str, float]] = {}
    try:
        running.wait_until(lambda w: w.view.ready and w.view.watermark >= start - 3000, timeout=60)
        time.sleep(3.0)  # quiet, settled: what follows is what the decisive events cause
        for person, kind in (("p-live-case", "positive"), ("p-live-fever", "fever")):
            at = int(time.time())
            line = decisive(person, kind, at)
            where = route(line, topics)
            stamp = time.time()
            producer.send(where.topic, key=where.key, value=line, timestamp_ms=int(stamp * 1000))
            producer.flush()
            sent[person] = (kind, stamp)
            print(f"  {_clock(stamp)} published {kind} for {person} (event time {format_rfc3339(at)})")
            time.sleep(1.0)
        deadline = time.monotonic() + wait_s
        wanted = {"p-live-case", "p-live-fever", *contacts}
        while time.monotonic() < deadline:
            shown = {person for person, record in running.view.codes.items() if record["level"] != "green"}
            if wanted <= shown:
                break
            # Pings keep flowing, as in a city: no input partition falls idle and jumps to its newest time.
            for person in ("p-live-far", "p-live-elsewhere"):
                line = live_ping(person, time.time())
                where = route(line, topics)
                producer.send(where.topic, key=where.key, value=line)
            time.sleep(0.2)
    finally:
        running.stop()
        producer.close()
    records = read_code_records(bootstrap, topics)
    case_stamp = sent["p-live-case"][1]
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for (record, stamp), kind in zip(records, code_kinds(records)):
        origin = sent.get(record["person"], (None, case_stamp))[1]
        latency_s = stamp / 1000 - origin
        by_kind[kind].append(latency_s * 1000)
        print(f"  {_clock(stamp / 1000)} hc.codes {record['person']}: {record['level']} from "
              f"{record['assessed_at']} ({', '.join(r['rule'] for r in record['reasons']) or 'no reason'}; "
              f"{kind}, {latency_s:.3f} s after its deciding event was published)")
    missing = sorted(wanted - {record["person"] for record, _ in records if record["level"] != "green"})
    if missing:
        print(f"  no raised code within {wait_s:.0f} s for: {', '.join(missing)}")
    for kind in KINDS[:4]:
        _spread(f"live {kind}", np.array(by_kind[kind]))


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def rule_change(size: Size, key: SigningKey) -> None:
    old, new = load_rule_set(RULES / "default.yaml"), load_rule_set(RULES / "points.yaml")
    start = time.perf_counter()
    states = synthetic_states(size.persons, AT)
    people = People(old)
    for state in states:
        people.restore(state)
    people.settle_all(AT - 1)
    print(f"persons: {size.persons:,} synthetic, restored and settled under {old.ref} "
          f"in {time.perf_counter() - start:.1f} s")
    previous = np.array([LEVEL_CODE[state.level] for state in states], dtype=np.int8)
    before = [(state.level, state.reasons) for state in states]

    start = time.perf_counter()
    changes = people.rescore(new, AT)
    people_s = time.perf_counter() - start

    start = time.perf_counter()
    levels = rescore_packed(pack_states(states), new, AT)
    restricted = restricted_assessments(states, new, AT, levels, previous)
    changed = [index for index, assessment in restricted.items() if assessment.status != before[index]]
    batch_s = time.perf_counter() - start

    issued_at = int(time.time())
    start = time.perf_counter()
    for change in changes:
        encode_record(code_record(change, key, issuer="healthcode", issued_at=issued_at, validity_s=12 * 3600))
    sign_s = time.perf_counter() - start

    same = {c.person for c in changes} == {states[i].person for i in changed}
    print(f"  switch {old.ref} -> {new.ref}: {len(changes):,} persons changed level or reasons "
          f"(batch path finds the same persons: {'yes' if same else 'NO'})")
    print(f"  People.rescore (what the worker runs): {people_s:.2f} s, {size.persons / people_s:,.0f} persons/s")
    print(f"  batch path (pack + evaluate + assess the restricted): {batch_s:.2f} s, "
          f"{size.persons / batch_s:,.0f} persons/s")
    print(f"  ratio People.rescore / batch path time: {people_s / batch_s:.1f}")
    if changes:
        print(f"  signing {len(changes):,} code records: {sign_s:.2f} s ({len(changes) / sign_s:,.0f} codes/s)")
    print(f"  rule change total for {size.persons:,} persons (People.rescore + signing): {people_s + sign_s:.2f} s; "
          f"with the batch path: {batch_s + sign_s:.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="300 residents x 2 days, 6 s of paced input, 30,000 persons"
    )
    parser.add_argument("--only", choices=["throughput", "latency", "live", "rules"], help="run one part only")
    parser.add_argument("--live-wait", type=float, default=60.0,
                        help="live run: how long to wait for every raised code (seconds)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    wanted = {args.only} if args.only else {"throughput", "latency", "live", "rules"}
    now = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, now - 3600, now + 30 * 86400)
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        with EmbeddedBroker(log_dir=base) as broker:
            if "throughput" in wanted:
                print("[throughput]")
                throughput(broker.bootstrap, size, key, base / "throughput")
            if "latency" in wanted:
                path = write_run(Simulation(outbreak(size.paced_residents)), base / "latency")
                lines = path.read_bytes().splitlines()
                print(f"[latency] outbreak city: {size.paced_residents:,} residents x 1 day, {len(lines):,} events; "
                      f"the first {RATE * size.paced_seconds:,} at the worker's defaults:")
                latency(broker.bootstrap, lines[: RATE * size.paced_seconds], key)
            if "live" in wanted:
                print("[live] HEALTHCODE_LIVE=true, events stamped with the wall clock (UTC):")
                live(broker.bootstrap, key, args.live_wait)
        if "rules" in wanted:
            print("[rule change]")
            rule_change(size, key)

if __name__ == "__main__":
    main()
