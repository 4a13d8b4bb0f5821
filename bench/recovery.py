"""Recovery after kill -9, with and without a snapshot, for 1 and 7 days of history.

For each history length and each pipeline (unsplit, and `HEALTHCODE_STAGES=true`: the
stays, presence and scoring stages each snapshotted and resumed apart), on topics of its
own, on an embedded broker this bench starts itself:
1. A simulated city's events up to an hour before its end are published, and a
   `healthcode worker` process (snapshots every `SNAPSHOT_EVERY` s) runs until it has
   settled through them and taken a snapshot covering them; then it is killed (SIGKILL).
   Printed: what a snapshot costs that worker (its turn held up, and the state's size).
2. The last hour is published while no worker runs.
3. A worker is started with the same settings and partitions: it resumes from the
   snapshot and replays only the last hour. Killed again once caught up.
4. A worker is started with snapshots off: it rebuilds from offset 0.
"Caught up" is settled through the newest event time published (`/healthz`
`settled_through`), which includes the idle timeout (2 s) that lets the last watermark
through. Timed from the process start, and from the moment the worker was ready (its
partitions assigned and its state built or loaded); the gap before "ready" is mostly the
group waiting for the killed member's session to time out (6 s) and the new member's join.
Goal: caught up within 15 s of reassignment, the same for 1 and 7 days. Figures only: the
bench never fails on time.

    .venv/bin/python -m bench.recovery            # 1,000 residents
    .venv/bin/python -m bench.recovery --quick    # 300 residents
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

from bench._pipeline import PARTITIONS, publish_lines, scratch_broker, signing_key, worker_settings
from codes.keystore import save_key
from healthcode.workers import Metrics, WorkerProcess
from scoring.timeutil import parse_rfc3339
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.publish import route
from simulators.run import Simulation
from streams.admin import create_topics
from streams.topics import Topics

SNAPSHOT_EVERY = 5
TAIL_S = 3600


def _snapshot_after(worker: WorkerProcess, since: float) -> Metrics:
    """The worker's metrics once it has written a snapshot taken after `since` (epoch seconds)."""
    deadline = time.monotonic() + 3 * SNAPSHOT_EVERY + 30
    while time.monotonic() < deadline:
        figures = worker.metrics()
        age = figures.value("healthcode_snapshot_age_seconds", -1)
        if 0 <= age <= time.time() - since:
            return figures
        time.sleep(0.5)
    raise SystemExit(f"bench.recovery: the worker wrote no snapshot within {3 * SNAPSHOT_EVERY + 30} s")


def _caught_up(worker: WorkerProcess, newest: int, timeout: float = 1800) -> tuple[float, float]:
    """Seconds from the worker's start until it was ready, and until settled through `newest`."""
    ready = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_running()
        state = worker.status()
        if state is not None and state["ready"]:
            ready = ready or time.monotonic()
            if state["settled_through"] is not None and parse_rfc3339(state["settled_through"]) >= newest:
                return ready - worker.started, time.monotonic() - worker.started
        time.sleep(0.1)
    raise TimeoutError(f"not settled within {timeout:.0f} s:\n{worker.log_tail()}")


def history(bootstrap: str, residents: int, days: int, scratch: Path, keys: Path) -> list[str]:
    """One history length through the four steps, for the unsplit pipeline and the stages; the table's rows."""
    events = write_run(Simulation(SimulationConfig(residents=residents, days=days, seed=7)), scratch / f"city-{days}")
    return [row for stages in (False, True) for row in recovered(bootstrap, events, days, stages, scratch, keys)]


def recovered(bootstrap: str, events: Path, days: int, stages: bool, scratch: Path, keys: Path) -> list[str]:
    """The four steps for one pipeline (`stages`: `HEALTHCODE_STAGES`) on topics of its own; its rows."""
    pipeline = "stages" if stages else "unsplit"
    topics = Topics(prefix=f"bench-recovery-{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    lines = events.read_bytes().splitlines()
    times = [route(line, topics).ts for line in lines]
    newest = max(t for t in times if t is not None)
    cut = newest - TAIL_S
    early = [line for line, t in zip(lines, times) if t is None or t <= cut]
    tail = [line for line, t in zip(lines, times) if t is not None and t > cut]
    publish_lines(bootstrap, topics, early)
    settings = worker_settings(bootstrap, topics, keys, scratch / f"data-{days}-{pipeline}",
                               HEALTHCODE_SNAPSHOT_EVERY=str(SNAPSHOT_EVERY), HEALTHCODE_STAGES=str(stages).lower())
    logs = scratch / f"logs-{days}-{pipeline}"
    logs.mkdir()
    first = WorkerProcess(settings, logs / "first.log")
    try:
        _, built = _caught_up(first, max(t for t in times if t is not None and t <= cut))
        taken = _snapshot_after(first, time.time())  # one covering everything it read
    finally:
        first.kill()
    snapshots = taken.value("healthcode_snapshot_pause_seconds_count")
    pause = taken.value("healthcode_snapshot_pause_seconds_sum") / max(1, snapshots)
    size = taken.value("healthcode_snapshot_bytes") / 1e6
    print(f"  {days} d, {pipeline}: {len(lines):,} events ({len(early):,} before the kill, {len(tail):,} in the last hour); "
          f"first worker caught up in {built:.1f} s; {snapshots:.0f} "
          f"snapshots, each holding up its turn {pause * 1000:.0f} ms on average, state {size:.1f} MB", flush=True)
    publish_lines(bootstrap, topics, tail)
    rows = []
    for label, every in (("snapshot", str(SNAPSHOT_EVERY)), ("rebuild from 0", "0")):
        worker = WorkerProcess({**settings, "HEALTHCODE_SNAPSHOT_EVERY": every}, logs / f"{every}.log")
        try:
            ready, done = _caught_up(worker, newest)
            resumed = worker.metrics().value("healthcode_snapshot_resumes_total")
        finally:
            worker.kill()
        rows.append(f"| {days} d | {len(lines):,} | {pipeline} | {label} | {'yes' if resumed else 'no'} | {ready:.1f} | {done:.1f} | "
                    f"{done - ready:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 residents instead of 1,000")
    args = parser.parse_args(argv)
    residents = 300 if args.quick else 1000
    with scratch_broker() as (base, broker):
        save_key(base / "keys", signing_key())
        print(f"[recovery] {residents:,} residents, {PARTITIONS} partitions, one worker, kill -9 then restart:")
        rows = [row for days in (1, 7) for row in history(broker.bootstrap, residents, days, base, base / "keys")]
        print("| history | events | pipeline | restart | resumed | start to ready (s) | start to caught up (s) "
              "| ready to caught up (s) |\n|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
