"""One worker's end-to-end throughput against a bare aiokafka consume-and-produce loop, and the
same events through the worker's step alone in memory, on an embedded broker this bench starts.

A simulated city is published (as fast as the broker takes it) under a unique topic prefix.
Baseline: a bare loop (`AIOKafkaConsumer` assigned every input partition from the beginning,
each value produced to an output topic) until it has read every published event. Then a worker
(`streams.app`, on Faust) is started and timed from its start until it has settled through the
newest event time (`BackgroundWorker.final_at`): group join, rebuild, decoding, event-time
ordering, contacts, scoring, signing and publishing codes, and the idle timeout that lets the
last watermark through (a worker cannot know an input is finished before it falls silent).
Then the same for a staged worker (`HEALTHCODE_STAGES=true`: stays, presence and scoring, all
its partitions) on the same events published again under another prefix: both read a backlog
as fast as they can. Goals: at least 10,000 events/s and at least 0.5 of the bare loop.
(`bench.scale` runs 1, 2 and 4 worker processes, unsplit and staged, against the same baseline,
the city published while they read.)

    .venv/bin/python -m bench.throughput            # 2,000 residents x 3 days
    .venv/bin/python -m bench.throughput --quick    # 300 residents x 2 days
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from prometheus_client import REGISTRY

from bench._pipeline import (
    PARTITIONS, RULES, PublishedCity, bare_loop, bench_topics, create_topic, publish_city, publish_lines,
    quick_only, rate, scratch_broker, signing_key, worker_config,
)
from codes import SigningKey
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from simulators.publish import route
from streams.admin import create_topics
from streams.step import WorkerConfig
from streams.testing import BackgroundWorker, MemoryLog, StepDriver, settle

EVENT_TYPES = ("ping", "visit", "test_result", "area_risk")


def _events_in() -> float:
    return sum(REGISTRY.get_sample_value("healthcode_events_in_total", {"type": t}) or 0.0 for t in EVENT_TYPES)


def throughput(bootstrap: str, residents: int, days: int, key: SigningKey, directory: Path) -> None:
    topics = bench_topics("throughput")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    out_topic = topics.prefix + "bare-out"
    create_topic(bootstrap, out_topic)
    city = publish_city(bootstrap, topics, SimulationConfig(residents=residents, days=days, seed=11), directory)
    events, events_file = city.count, city.events
    print(f"simulated city: {residents:,} residents x {days} days, {events:,} events "
          f"published in {city.seconds:.1f} s ({PARTITIONS} partitions per keyed topic)")

    start, cpu = time.perf_counter(), time.process_time()
    seen = asyncio.run(bare_loop(bootstrap, topics, events, out_topic))
    bare_s, bare_cpu = time.perf_counter() - start, time.process_time() - cpu

    in_memory(events_file, key)
    print(f"  bare aiokafka consume+produce (baseline): {rate(seen, bare_s)}, "
          f"{seen / bare_cpu:,.0f} events per CPU-second ({bare_cpu:.1f} s CPU)")
    timed("unsplit worker", replace(worker_config(bootstrap, topics, key), stages=False), city, bare_s)
    staged = bench_topics("throughput-staged")
    create_topics(bootstrap, staged, partitions=PARTITIONS)
    publish_lines(bootstrap, staged, events_file.read_bytes().splitlines())
    timed("staged worker", replace(worker_config(bootstrap, staged, key), stages=True), city, bare_s)


def timed(label: str, config: WorkerConfig, city: PublishedCity, bare_s: float) -> None:
    """A worker on `config`'s topics, where `city` waits, timed from its start until settled through its newest event."""
    events = city.count
    before = _events_in()
    start, cpu = time.perf_counter(), time.process_time()
    running = BackgroundWorker(config)
    try:
        ready = running.wait_until(lambda w: w.view.ready, timeout=60)
        settled = running.wait_until(lambda w: w.final_at >= city.newest, timeout=600)
    finally:
        worker_cpu = time.process_time() - cpu
        running.stop()
    worker_s = settled - start
    taken = _events_in() - before
    idle_s = running.config.idle_s
    processing_s = max(1e-9, settled - ready - idle_s)
    print(f"  {label}, start to settled through the newest event: {rate(events, worker_s)}")
    print(f"    of which group join + rebuild {ready - start:.2f} s (the broker delays a new group's first "
          f"rebalance ~3 s) and the {idle_s:.1f} s idle timeout that releases the last watermark")
    print(f"    {label} without those two: {rate(events, processing_s)}")
    print(f"    valid events the worker took in: {taken:,.0f} of {events:,} published")
    # CPU time is what a busy machine does not distort: events per CPU-second is what one
    # worker on a core of its own could take (the bench thread's polling is counted too).
    print(f"    per CPU-second (load-independent): {events / worker_cpu:,.0f} events/s ({worker_cpu:.1f} s CPU)")
    ratio = bare_s / worker_s
    print(f"    ratio {label} / bare loop: {ratio:.2f} start to settled, {bare_s / processing_s:.2f} without join "
          f"and idle timeout (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}; "
          f">= 10,000 events/s: {'met' if events / worker_s >= 10_000 else 'NOT met'})")


def in_memory(events: Path, key: SigningKey) -> None:
    """The pipeline's decisions alone: the same events through a `Step` on an in-memory log, no Kafka."""
    config = WorkerConfig(bootstrap="memory", topics=bench_topics("memory"), group="memory",
                          rules=load_rule_set(RULES / "default.yaml"), keys=[key], partitions=PARTITIONS,
                          stages=False)
    lines = events.read_bytes().splitlines()
    log = MemoryLog(config.topics, PARTITIONS)
    log.publish(lines)
    newest = max(t for t in (route(line, config.topics).ts for line in lines) if t is not None)
    start, cpu = time.perf_counter(), time.process_time()
    # A clock step longer than the idle timeout: the in-memory log has no backlog to wait for.
    settle([StepDriver(log, config, frozenset(range(PARTITIONS)))], newest, time.time(), step_s=config.idle_s)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    print(f"  step alone, in memory (decode, event time, contacts, scoring, signing; no Kafka): "
          f"{rate(len(lines), wall_s)}, {len(lines) / cpu_s:,.0f} events per CPU-second")


def main(argv: list[str] | None = None) -> None:
    quick = quick_only(argv, __doc__, "300 residents x 2 days instead of 2,000 x 3")
    residents, days = (300, 2) if quick else (2_000, 3)
    with scratch_broker() as (base, broker):
        print("[throughput]")
        throughput(broker.bootstrap, residents, days, signing_key(), base / "throughput")


if __name__ == "__main__":
    main()
