"""Driving the pipeline in tests and benchmarks: in memory with no broker, or a real worker on a thread.

- `MemoryLog` is the testing source and sink (in the manner of bytewax's testing
  source and sink, or Faust's `agent.test_context()`): topics as lists in memory,
  partitioned by key as Kafka's default partitioner does. `StepDriver` runs a
  `Step` against it the way the Faust shell runs one against Kafka: fenced topics
  read on assignment, every input partition replayed from its start, each turn's
  messages sent back into the log (so case notices and progress reach every
  driver, its own included).
- `BackgroundWorker` runs a whole Faust worker (`streams.app`) on its own thread
  and event loop, on a real broker: the one harness the integration tests and the
  benchmark share.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from codes import SigningKey
from scoring.rules import RuleSet, load_rule_set
from simulators.publish import route
from streams.codes_reader import distinct_changes, redundant
from streams.issuing import timeline_entry
from streams.stages import RegionStep, StaysStep
from streams.resume import PRESENCE, STAYS, caught_up, image, restored, restored_stage
from streams.snapshots import LogFacts, Snapshot, digest
from streams.step import End, Known, Message, Output, Record, Source, Step, WorkerConfig, WorkerView, partition_of
from streams.topics import SPECS, Topics


@dataclass
class MemoryLog:
    """Every topic of one prefix, in memory: appended to by key, read by offset."""

    topics: Topics
    partitions: int
    logs: dict[Source, list[Record]] = field(default_factory=dict)
    beginnings: dict[Source, int] = field(default_factory=dict)
    """Per partition, the offset before which retention deleted its records (none: 0)."""

    def __post_init__(self) -> None:
        for spec in SPECS:
            count = self.partitions if spec.partitioned else 1
            for partition in range(count):
                self.logs[(self.topics.name(spec.role), partition)] = []

    def count(self, topic: str) -> int:
        """How many partitions `topic` has."""
        return sum(1 for name, _ in self.logs if name == topic)

    def append(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
               timestamp_ms: int = 0) -> Record:
        """Add one message; the partition is the key's (murmur2), or 0 without a key."""
        if partition is None:
            partition = partition_of(key.decode(), self.count(topic)) if key is not None else 0
        log = self.logs[(topic, partition)]
        record = Record(topic, partition, len(log), key, value, timestamp_ms)
        log.append(record)
        return record

    def publish(self, lines: Iterable[bytes]) -> None:
        """Event lines routed and keyed as `healthcode simulate --publish` does."""
        for line in lines:
            where = route(line, self.topics)
            self.append(where.topic, where.key, line)

    def delete_before(self, source: Source, offset: int) -> None:
        """Retention deleted the records of `source` before `offset` (as a broker does: offsets stay)."""
        self.beginnings[source] = max(offset, self.beginnings.get(source, 0))

    def send(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.append(message.topic, message.key, message.value, message.partition)

    def facts(self, offsets: dict[Source, int]) -> dict[Source, LogFacts]:
        """What the log holds of each partition in `offsets`, as `streams.resume.log_facts` asks a broker."""
        return {source: LogFacts(self.beginnings.get(source, 0), len(self.logs[source]), self.digest_at(source, offset - 1))
                for source, offset in offsets.items() if source in self.logs}

    def digest_at(self, source: Source, offset: int) -> str | None:
        """The digest of the record at `offset` of `source` (None: no such record)."""
        log = self.logs[source]
        kept = self.beginnings.get(source, 0) <= offset < len(log)
        return digest(log[offset].key, log[offset].value) if kept else None

    def values(self, topic: str) -> list[bytes]:
        """Every value on `topic`, partition by partition (what a fenced read finds)."""
        return [r.value or b"" for (name, _), log in sorted(self.logs.items()) if name == topic for r in log]

    def codes(self) -> list[dict[str, Any]]:
        """Every code record on `codes`, partition by partition."""
        records = [orjson.loads(value) for value in self.values(self.topics.codes)]
        return [record for record in records if record.get("type") == "code"]

    def timeline(self) -> list[dict[str, Any]]:
        """The level timeline the code records publish (as `healthcode codes tail` folds them)."""
        return [timeline_entry(record) for record in distinct_changes(self.codes())]


SCORING = "scoring"
"""What a `StepDriver` runs: the scoring `Step`, or (`STAYS`, `PRESENCE`, as snapshots name them) a
stage of presence split by region (`streams.stages`)."""


class StepDriver:
    """One worker's `Step` on a `MemoryLog`: the Faust shell's loop with no Kafka and a test's clock.

    `role` STAYS or PRESENCE drives a stage of presence split by region instead, for the
    `owned` partitions of `pings` or `stays` (SCORING with `config.stages` scores from `exposures`).
    """

    def __init__(self, log: MemoryLog, config: WorkerConfig, owned: frozenset[int], name: str = "driver",
                 now: float = 0.0, role: str = SCORING, snapshot: Snapshot | None = None) -> None:
        """A worker assigned `owned`; with `snapshot`, resuming from it (`streams.snapshots.unusable`
        decides whether one may be resumed from)."""
        self.log, self.config, self.owned, self.name, self.role = log, config, owned, name, role
        self.view = WorkerView()
        self.step = self._assigned(now) if snapshot is None else self._resumed(snapshot, now)

    def snapshot(self, made_by: str) -> Snapshot:
        """A snapshot of the step, as the Faust shell takes one between turns: its inputs' offsets
        (internal and broadcast topics included), and for the scoring step the owned partitions'
        end on `codes` (where a fence would go: all it sent is before it)."""
        codes = self.config.topics.codes
        fenced = {(codes, p): len(self.log.logs[(codes, p)]) for p in self.owned} if self.role == SCORING else {}
        offsets = {**self.step.positions.covered(), **fenced}
        tails = {source: tail for source, offset in offsets.items()
                 if (tail := self.log.digest_at(source, offset - 1)) is not None}
        return Snapshot(offsets, tails, made_by, self.config.clock(), image(self.step))

    def _resumed(self, snapshot: Snapshot, now: float) -> Step | StaysStep | RegionStep:
        """The step `snapshot` holds, told what was sent since: the owned partitions' codes after
        the snapshot's offsets, and every dead letter."""
        step: Step | StaysStep | RegionStep
        if self.role == SCORING:
            step = restored(snapshot.state, self.config, self.view, self.name, now)
        else:
            step = restored_stage(snapshot.state, StaysStep if self.role == STAYS else RegionStep, self.config, now)
        codes = self.config.topics.codes
        after = [r.value or b"" for p in sorted(self.owned) if (codes, p) in snapshot.offsets
                 for r in self.log.logs[(codes, p)][snapshot.offsets[(codes, p)]:]]
        caught_up(step, after, self.log.values(self.config.topics.dead_letter))
        return step

    def _sources(self) -> list[Source]:
        topics = self.config.topics
        broadcast = {SCORING: (topics.areas, topics.cases, topics.rules), STAYS: (topics.cases, topics.rules),
                     PRESENCE: (topics.areas, topics.cases, topics.rules)}[self.role]
        if self.role == SCORING and not self.config.stages:
            broadcast += (topics.pings,)
        owned = {SCORING: [topics.visits] + ([topics.exposures] if self.config.stages else []),
                 STAYS: [topics.pings], PRESENCE: [topics.stays]}[self.role]
        wide = [source for source in self.log.logs if source[0] in broadcast]
        return wide + [(topic, p) for topic in owned for p in sorted(self.owned)]

    def _assigned(self, now: float) -> Step | StaysStep | RegionStep:
        """A fresh step, as on an assignment: what the fenced topics hold, every input from its start
        (offset 0, or where retention deleted what was before)."""
        topics = self.config.topics
        codes = [r.value or b"" for p in self.owned for r in self.log.logs[(topics.codes, p)]] \
            if self.role == SCORING else []
        starts = {source: self.log.beginnings.get(source, 0) for source in self._sources()}
        known = Known.read(self.config, self.log.values(topics.rules), codes,
                           self.log.values(topics.dead_letter), wall=self.config.clock(),
                           pings_truncated=any(offset > 0 for (topic, _), offset in starts.items() if topic == topics.pings))
        if self.role == STAYS:
            return StaysStep(self.config, known.history, self.owned, known.dead_lettered, now, starts)
        if self.role == PRESENCE:
            return RegionStep(self.config, known.history, self.owned, now, starts)
        return Step(self.config, self.name, self.owned, known, now, self.view, starts=starts)

    def kill(self, now: float) -> None:
        """The worker died and another took its partitions: a fresh step rebuilds from the start."""
        self.step = self._assigned(now)

    def decide(self, now: float, wall: float, limit: int | None = None,
               unanswered: Collection[str] = ()) -> Output:
        """Take what is unread (at most `limit` records per partition) and advance; nothing is sent.
        `unanswered`: topics whose fetch has not answered yet (nothing read, no end known)."""
        step = self.step
        sources = [source for source in self._sources() if source[0] not in unanswered]
        for source in sources:
            log = self.log.logs[source]
            start = step.position(source) or 0
            step.take(log[start: None if limit is None else start + limit], now, wall)
        # Every partition answers at once, at `now`: the in-memory fetch.
        ends = {source: End(len(self.log.logs[source]), now * 1000) for source in sources}
        return step.advance(now, wall, ends, now * 1000)

    def turn(self, now: float, wall: float, limit: int | None = None, unanswered: Collection[str] = ()) -> Output:
        """`decide`, then send what it decided (and start over if a new rule set arrived)."""
        output = self.decide(now, wall, limit, unanswered)
        self.log.send(output.messages)
        if self.step.new_rules:
            self.step = self._assigned(now)
        return output


def settle(drivers: list[StepDriver], through: int, wall: float, start: float = 0.0, step_s: float = 0.5,
           turns: int = 2000) -> float:
    """Turn every driver, the clock moving `step_s` per round, until each has settled through `through`.

    Returns the clock reading then; raises AssertionError if `turns` rounds were not enough.
    Stage drivers (`role` STAYS, PRESENCE) are turned too; only scoring drivers settle.
    """
    now = start
    settled = {id(driver): -1 << 62 for driver in drivers if driver.role == SCORING}
    for _ in range(turns):
        for driver in drivers:
            output = driver.turn(now, wall)
            if output.settled_through is not None and driver.role == SCORING:
                settled[id(driver)] = output.settled_through
        if all(value >= through for value in settled.values()):
            return now
        now += step_s
    raise AssertionError(f"not settled through {through} in {turns} turns: {settled}")


class BackgroundWorker:
    """A Faust worker (`streams.app`) on its own thread and event loop; `stop()` ends it cleanly."""

    def __init__(self, config: WorkerConfig) -> None:
        from streams.app import Pipeline

        self.config = config
        self.pipeline: Any = None
        self.error: BaseException | None = None
        self._made = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._factory = Pipeline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._made.wait(timeout=30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as error:  # surfaced through `error` and `wait_until`
            self.error = error
        finally:
            self._made.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.pipeline = self._factory(self.config)
        self._made.set()
        await self._serve()

    async def _serve(self) -> None:
        """Run the pipeline until `stop()` (a subclass may serve more on the same loop)."""
        assert self._stop is not None
        await self.pipeline.run_until(self._stop)

    @property
    def view(self) -> WorkerView:
        return self.pipeline.view

    @property
    def final_at(self) -> int:
        """Every level change up to this event time is published."""
        return self.pipeline.final_at

    def wait_until(self, done: Callable[["BackgroundWorker"], bool], timeout: float) -> float:
        """Poll until `done(self)`; returns the perf_counter time it was seen true. Fails on a worker error."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.error is not None:
                raise AssertionError(f"the worker failed: {self.error!r}") from self.error
            if self.pipeline is not None and done(self):
                return time.perf_counter()
            time.sleep(0.05)
        raise AssertionError(f"the worker did not get there within {timeout:.0f} s")

    def wait_settled(self, through: int, timeout: float = 120) -> float:
        """Wait until every level change up to event time `through` is published."""
        return self.wait_until(lambda worker: worker.final_at >= through, timeout)

    def call_soon(self, action: Callable[[], Any]) -> None:
        """Run `action` on the worker's event loop (its Kafka clients are not thread-safe)."""
        self._loop.call_soon_threadsafe(action)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def resident_web(keys: list[SigningKey], secret: bytes, partitions: int, at: int,
                 residents: Iterable[str], **overrides: Any) -> tuple[WorkerView, WorkerConfig]:
    """A settled worker's view and configuration for the resident route, without a broker:
    it owns every partition, has scored through event time `at`, its clock reads `at`, and
    `residents` are persons its events named (green: none of them changed level)."""
    view = WorkerView(owned=frozenset(range(partitions)), ready=True, watermark=at, settled_through=at,
                      residents=set(residents))
    config = WorkerConfig(bootstrap="memory", topics=Topics(prefix="memory."), group="memory",
                          rules=overrides.pop("rules", None) or _default_rules(), keys=keys,
                          partitions=partitions, resident_secrets=[secret], clock=lambda: float(at), **overrides)
    view.rule_set, view.rules = config.rules.ref, {config.rules.ref: config.rules}
    return view, config


def _default_rules() -> RuleSet:
    return load_rule_set(Path(__file__).resolve().parents[1] / "rules" / "default.yaml")


def assert_each_record_changes_what_is_shown(records: Iterable[dict[str, Any]]) -> None:
    """No record was sent twice: folded in order (each superseding from its moment on, see
    `scoring.timeline`), every one changes its person's timeline (a level, reasons, or lines cut
    off that no longer hold)."""
    again = redundant(list(records))
    assert not again, f"sent again without changing anything: {[(r['person'], r['assessed_at']) for r in again]}"
