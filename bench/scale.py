"""Scale-out: 1, 2 and 4 `healthcode worker` processes on one embedded broker this bench starts,
for the unsplit pipeline and for presence split by region (`HEALTHCODE_STAGES=true`), against
the bare aiokafka loop, in one run.

1. A simulated city is recorded once and replayed (`scoring.replay.replay_file`, what
   `healthcode replay` runs): the timeline every run must publish, and the in-process rate.
2. Baseline: the bare loop (`bench._pipeline.bare_loop`: every input partition read from the
   beginning, each value produced to an output topic) over the published city.
3. For each pipeline and worker count: on topics under a fresh prefix (its own group), that many
   worker processes (`healthcode.workers.WorkerProcess`) are started together; once they share
   the partitions (the group join, printed, not in the rates) the city is published to them and
   they are timed from its first event until every one is settled through the newest event time
   (`/healthz` `settled_through`), which includes the idle timeout that releases the last
   watermark (a rate without it is printed too). Published only after the join because a
   rebalance makes a worker read its partitions again from their start: its pings would count
   twice and the rate would time the join. Each worker's `/metrics` gives the pings it processed
   (`healthcode_events_in_total{type="ping"}`: unsplit, every worker reads every ping; staged,
   its stays stage reads only its `pings` partitions), and, over the timed span, the events it
   took in and its CPU seconds (`process_cpu_seconds_total`; a worker's image-rendering child
   process is not counted). The codes published are folded into their timeline and compared
   with replay's (and none may have been sent twice); a run that differs says by how many
   lines, and every run how many events its workers took in late
   (`healthcode_late_events_total`), the one difference allowed.

Figures only, never a failure on time. The machine's cores are printed: on 2 shared cores, 4
workers cannot scale the aggregate rate; events per CPU-second are what does not depend on that.

    .venv/bin/python -m bench.scale                    # 800 residents x 2 days, unsplit and staged
    .venv/bin/python -m bench.scale --stages off       # the unsplit pipeline only
    .venv/bin/python -m bench.scale --quick            # 300 residents x 2 days
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench._pipeline import (
    PARTITIONS, RULES, bare_loop, bench_topics, create_topic, publish_city, publish_lines, scratch_broker,
    signing_key, worker_settings,
)
from codes.keystore import save_key
from healthcode.workers import Metrics, WorkerProcess, settled, wait_until
from scoring.replay import replay_file
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339
from simulators.publish import route
from simulators.config import DiseaseConfig, MobilityConfig, SimulationConfig
from streams.admin import create_topics
from streams.codes_reader import distinct_changes, read_codes, redundant
from streams.issuing import timeline_entry
from streams.topics import Topics

WORKERS = (1, 2, 4)
PIPELINES = {"unsplit": "false", "staged": "true"}
"""Each pipeline's `HEALTHCODE_STAGES`."""
IDLE_S = 2.0
SETTLE_TIMEOUT_S = 1200


@dataclass(frozen=True)
class Run:
    """One pipeline with some workers: what they took and how long, and whether their codes tell replay's timeline."""

    pipeline: str
    events: int
    """Events in the city."""
    ready_s: float
    """From the start of the processes until every one was ready with its share of the partitions."""
    publish_s: float
    """Publishing the city (the workers reading as it arrives)."""
    settled_s: float
    """From the first event published until every worker was settled through the newest event time."""
    pings: tuple[float, ...]
    """Per worker, the pings it processed."""
    taken: tuple[float, ...]
    """Per worker, every event it took in (pings, visits, test results, designations)."""
    cpu_s: tuple[float, ...]
    """Per worker, CPU seconds from the first event published until settled."""
    equal: bool
    differing: int
    """Timeline lines replay has and the run has not, and the other way round."""
    late: int
    """Events the workers took in after their watermark had passed them, summed over the workers:
    scored where they arrived, not where replay puts them."""
    redundant: int
    """Code records that changed nothing (sent twice)."""
    codes: int

    @property
    def workers(self) -> int:
        return len(self.pings)

    @property
    def processing_s(self) -> float:
        """Published to settled, without the idle timeout that releases the last watermark."""
        return max(1e-9, self.settled_s - IDLE_S)


def table(runs: Sequence[Run]) -> str:
    """The runs as a Markdown table, one row a run."""
    rows = [
        "| pipeline | workers | pings processed per worker | events/s, published to settled (less the idle "
        "timeout) | events per CPU-second per worker | group join / publishing / published to settled (s) "
        "| codes | timeline equal to replay |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        per_cpu = " / ".join(f"{taken / cpu:,.0f}" for taken, cpu in zip(run.taken, run.cpu_s))
        verdict = "yes" if run.equal else f"**NO**, {run.differing:,} lines differ"
        if run.late:
            verdict += f", {run.late:,} late events"
        if run.redundant:
            verdict += f", {run.redundant:,} records sent twice"
        rows.append(
            f"| {run.pipeline} | {run.workers} | {' / '.join(f'{p:,.0f}' for p in run.pings)} "
            f"| {run.events / run.settled_s:,.0f} ({run.events / run.processing_s:,.0f}) | {per_cpu} "
            f"| {run.ready_s:.1f} / {run.publish_s:.1f} / {run.settled_s:.1f} | {run.codes:,} | {verdict} |"
        )
    return "\n".join(rows)


def city(residents: int, days: int) -> SimulationConfig:
    """A city whose codes change often enough for the comparison with replay to mean something (1% of
    residents infected at the start, infectious within a day: 171 timeline lines for 800 residents),
    where no ping is delayed on its device: the recorded order runs at most 265 s of event time behind
    itself (800 x 2 days), within the default allowed lateness, so no event is late, and late events
    are the one thing a stream scores otherwise than replay. Unless publishing stops for longer than
    the idle timeout: every input then looks finished, the watermarks go to the newest event time,
    and what follows is late (a 4 s pause halfway: 18 late pings per worker); the table counts
    them. Not more cases: each known case costs the staged pipeline's region partitions a probe
    per turn until it is scored (`RegionStep`), which with 3% infected took a third of a staged
    worker's CPU."""
    return SimulationConfig(
        residents=residents, days=days, seed=11, mobility=MobilityConfig(delayed_ping=0.0),
        disease=DiseaseConfig(initial_infections=max(3, residents // 100), latent_days=0.5,
                              presymptomatic_days=0.5),
    )


def lines_differing(timeline: list[dict[str, Any]], expected: list[dict[str, Any]]) -> int:
    """How many lines one timeline has that the other has not (a line changed counts twice: gone and new)."""
    ours, theirs = Counter(map(orjson.dumps, timeline)), Counter(map(orjson.dumps, expected))
    return sum(((ours - theirs) + (theirs - ours)).values())


def _owning_all(states: list[dict[str, Any]]) -> bool:
    """Every worker ready with a share of the partitions, and every partition owned."""
    owned = sorted(p for state in states for p in state["partitions"])
    return all(state["ready"] and state["partitions"] for state in states) and owned == list(range(PARTITIONS))


def run(bootstrap: str, pipeline: str, workers: int, lines: list[bytes], newest: int, expected: list[dict],
        keys: Path, scratch: Path) -> Run:
    """`workers` processes of `pipeline` on fresh topics: once they share the partitions, publish the city,
    wait until they are settled through `newest`, read the codes."""
    topics = bench_topics(f"scale-{pipeline}-{workers}")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    here = scratch / f"{pipeline}-{workers}"
    here.mkdir()
    settings = worker_settings(bootstrap, topics, keys, here / "data", HEALTHCODE_STAGES=PIPELINES[pipeline],
                               HEALTHCODE_IDLE_TIMEOUT=str(IDLE_S))
    start = time.monotonic()
    processes = [WorkerProcess(settings, here / f"worker-{index}.log") for index in range(workers)]
    try:
        wait_until(processes, _owning_all, 180, "own every partition")
        ready = time.monotonic()
        # Published once the group is formed: a rebalance makes a worker read its partitions again
        # from the start, which would count their pings twice and time the join, not the work.
        before = [process.metrics() for process in processes]
        publish_lines(bootstrap, topics, lines)
        published = time.monotonic()
        through = format_rfc3339(newest)
        wait_until(processes, lambda states: settled(states, PARTITIONS, through), SETTLE_TIMEOUT_S,
                   f"settle through {through}")
        done = time.monotonic()
        after = [process.metrics() for process in processes]
    finally:
        for process in processes:
            process.stop()
    records = list(read_codes(bootstrap, topics, idle_s=2.0))
    timeline = [timeline_entry(record) for record in distinct_changes(records)]
    return Run(
        pipeline=pipeline, events=len(lines), ready_s=ready - start, publish_s=published - ready,
        settled_s=done - ready, pings=tuple(m.value("healthcode_events_in_total", type="ping") for m in after),
        taken=tuple(m.total("healthcode_events_in_total") - b.total("healthcode_events_in_total")
                    for m, b in zip(after, before)),
        cpu_s=tuple(_cpu(m) - _cpu(b) for m, b in zip(after, before)),
        equal=timeline == expected, differing=lines_differing(timeline, expected),
        late=round(sum(m.total("healthcode_late_events_total") - b.total("healthcode_late_events_total")
                       for m, b in zip(after, before))),
        redundant=len(redundant(records)), codes=len(records),
    )


def _cpu(metrics: Metrics) -> float:
    return metrics.value("process_cpu_seconds_total", float("nan"))


def baseline(bootstrap: str, topics: Topics, events: int) -> tuple[float, float]:
    """The bare loop over the city on `topics`: events/s wall and per CPU-second (this process)."""
    out_topic = topics.prefix + "bare-out"
    create_topic(bootstrap, out_topic)
    start, cpu = time.perf_counter(), time.process_time()
    seen = asyncio.run(bare_loop(bootstrap, topics, events, out_topic))
    return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu)


def _load() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 residents x 2 days instead of 800")
    parser.add_argument("--stages", choices=["off", "on", "both"], default="both",
                        help="the unsplit pipeline (off), presence split by region (on), or both (default)")
    args = parser.parse_args(argv)
    pipelines = {"off": ["unsplit"], "on": ["staged"], "both": ["unsplit", "staged"]}[args.stages]
    residents, days = (300, 2) if args.quick else (800, 2)
    print(f"[scale] {os.cpu_count()} cores on this machine, {len(os.sched_getaffinity(0))} usable by this process, "
          f"load average {_load()} at the start; every worker, the broker and this bench share them: with more "
          f"workers than cores the aggregate rate cannot grow, so events per CPU-second are the figure that shows "
          f"each worker's share of the work.")
    with scratch_broker() as (base, broker):
        save_key(base / "keys", signing_key())
        topics = bench_topics("scale-city")
        create_topics(broker.bootstrap, topics, partitions=PARTITIONS)
        published = publish_city(broker.bootstrap, topics, city(residents, days), base / "city")
        lines = published.events.read_bytes().splitlines()
        pings = sum(1 for line in lines if route(line, topics).topic == topics.pings)
        print(f"  city: {residents:,} residents x {days} days, {published.count:,} events ({pings:,} pings), "
              f"{PARTITIONS} partitions per keyed topic (simulated and published in {published.seconds:.1f} s)",
              flush=True)
        start = time.process_time()
        replayed = replay_file(published.events, load_rule_set(RULES / "default.yaml"))
        replay_s = time.process_time() - start
        expected = [change.to_json() for change in replayed.timeline]
        print(f"  replay (one process, no Kafka): {published.count / replay_s:,.0f} events per CPU-second, "
              f"{len(expected):,} timeline lines", flush=True)
        bare, bare_cpu = baseline(broker.bootstrap, topics, published.count)
        print(f"  bare aiokafka consume+produce loop: {bare:,.0f} events/s, {bare_cpu:,.0f} per CPU-second",
              flush=True)
        runs = []
        for pipeline in pipelines:
            for workers in WORKERS:
                runs.append(run(broker.bootstrap, pipeline, workers, lines, published.newest, expected,
                                base / "keys", base))
                print(table(runs[-1:]).splitlines()[-1], flush=True)
    print(table(runs))
    for one in (r for r in runs if r.workers == 1):
        per_s, per_cpu = one.events / one.processing_s, one.taken[0] / one.cpu_s[0]
        print(f"  one {one.pipeline} worker: {per_s:,.0f} events/s published to settled less the idle timeout "
              f"({per_s / bare:.2f} of the bare loop), {per_cpu:,.0f} events per CPU-second "
              f"({per_cpu / bare_cpu:.2f} of the bare loop's); goal >= 10,000 events/s per worker: "
              f"{'met' if per_s >= 10_000 else 'NOT met'}")
    exact = all(r.equal and not r.redundant for r in runs)
    print(f"  every run's timeline equal to replay: {'yes' if exact else 'NO'}; load average {_load()} at the end")


if __name__ == "__main__":
    main()
