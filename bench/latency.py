"""Event-to-code latency at a steady 2,000 events/s, on an embedded broker this bench starts.

A worker is started on an empty outbreak city's topics and, once it owns
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

    .venv/bin/python -m bench.latency            # 1,000-resident outbreak city, 30 s paced
    .venv/bin/python -m bench.latency --quick    # 300 residents, 6 s paced
"""

from __future__ import annotations

import time

import numpy as np

from bench._pipeline import (
    ESCALATIONS, KINDS, PARTITIONS, bench_topics, code_kinds, outbreak, quick_only, read_code_records,
    scratch_broker, signing_key, spread, worker_config,
)
from codes import SigningKey
from scoring.timeutil import parse_rfc3339
from simulators.output import write_run
from simulators.publish import route
from simulators.run import Simulation
from streams.admin import create_topics
from streams.eventtime import NEVER
from streams.topics import Topics
from streams.testing import BackgroundWorker

RATE = 2_000


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
    spread("event-to-code latency, all codes", waited)
    # Codes the end-of-input flush released wait for the idle timeout, not for the worker.
    steady = released | (coded < stamps[-1])
    for kind in KINDS:
        spread(f"{kind}, event-to-code (steady)", waited[steady & (kinds == kind)])
    own = coded[released] - stamps[releasing[released]]
    spread("code after the first input past its settling hold (the worker's own delay)", own)
    escalations = waited[steady & np.isin(kinds, ESCALATIONS)]
    if escalations.size:
        p99 = float(np.percentile(escalations, 99)) / 1000
        print(f"    goal escalations p99 < 1 s (event-to-code): {'met' if p99 < 1 else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    quick = quick_only(argv, __doc__, "300 residents, 6 s of paced input")
    residents, seconds = (300, 6) if quick else (1_000, 30)
    with scratch_broker() as (base, broker):
        path = write_run(Simulation(outbreak(residents)), base / "latency")
        lines = path.read_bytes().splitlines()
        print(f"[latency] outbreak city: {residents:,} residents x 1 day, {len(lines):,} events; "
              f"the first {RATE * seconds:,} at the worker's defaults:")
        latency(broker.bootstrap, lines[: RATE * seconds], signing_key())


if __name__ == "__main__":
    main()
