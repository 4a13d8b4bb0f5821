"""The stream worker: Kafka in, the scoring core in event-time order, signed codes out.

Topology (see README "The pipeline"):
- person events (`visits`) are consumed in a consumer group: each worker owns some
  partitions, i.e. some persons, scores them and publishes their codes;
- pings, area designations, rule sets and case notices are read whole by every
  worker: contacts cross partitions, so every worker's presence index sees everyone;
- a worker learns of its own persons' cases ahead of scoring (`CaseTracker`) and
  broadcasts them on `cases` with progress markers, so every worker hears of every
  case before scoring past it.

Rule sets published on `rules` take effect at their `valid_from` event time: the
worker starts over with the whole rule history known (see `CityScorer`), so levels
switch at exactly that moment whatever the arrival order.

Recovery is by rebuilding, not by restoring: on every (re)assignment the worker
reads its inputs again from the beginning (the core is deterministic, so the same
inputs give the same level changes) and does not publish again a change already on
`codes` (read up to a fence it writes itself, so the broker's under-reported end
offsets cannot cut the read short). Nothing is lost, nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from kafka.partitioner.default import murmur2

from codes import SigningKey, signing_key_at
from scoring.city import CaseNotice, CityScorer
from scoring.events import Ping
from scoring.exposure import CaseWindow
from scoring.limits import EventLimits
from scoring.notices import CaseTracker
from scoring.people import PersonChange
from scoring.rules import RuleSet
from scoring.timeutil import parse_rfc3339, to_epoch
from streams import metrics
from streams.deadletter import Rejected, asend_dead_letter, read_letter
from streams.eventtime import NEVER, Reports, TimeOrder, Watermarks
from streams.fence import read_to_fence
from streams.health import DEFAULT_STALL_TIMEOUT_S, Health
from streams.horizon import RebuildHorizon
from streams.intake import intake_clock, triage
from streams.issuing import change_id, code_record, encode_record, signed
from streams.letters import LetterLedger
from streams.reading import json_object
from streams.rulebook import history_with, read_rule_set
from streams.topics import SPECS, Topics

WORKER_STATUS = "worker"
STATUS_EVERY_S = 2.0
FETCH_WAIT_MS = 100
"""How long the broker may hold an empty fetch: a quiet partition's "caught up" is at most about this stale."""
PROBE_EVERY_S = 1.0
"""How often the worker asks the broker for its metadata (is it there, are the topics there)."""
PROBE_TIMEOUT_S = 2.0
STOP_GRACE_S = 1.5
"""On stop, how long the step under way may take to finish before it is cancelled: a step
can wait on a broker that is gone. Recovery rebuilds, so a cut-short step loses nothing."""
CLOSE_TIMEOUT_S = 2.0
"""How long closing the Kafka clients may take: the producer's flush waits on the broker."""
METADATA_MAX_AGE_MS = 5000
"""How stale the group consumer's view of the topics may get: a topic created again (a broker
that lost its data) is assigned within this, not the Kafka client's default of 5 minutes."""

FENCE_TIMEOUT_S = 30.0
"""How long a rebuild waits for a fence it wrote (milliseconds, normally). A topic deleted or
created again in between loses the fence: the rebuild then starts over with a new one."""

log = logging.getLogger(__name__)


class RebuildDeferred(Exception):
    """A rebuild cannot be done now (topics gone, broker silent, a fence lost): it is tried again."""


def partition_of(person: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a person's key (murmur2, as every client does)."""
    return (murmur2(person.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class WorkerConfig:
    """Everything a worker needs; the CLI builds it from `Settings`."""

    bootstrap: str
    topics: Topics
    group: str
    rules: RuleSet
    keys: list[SigningKey]
    partitions: int
    issuer: str = "healthcode"
    code_validity_s: int = 12 * 3600
    lateness_s: int = 600
    idle_s: float = 2.0
    batch_size: int = 5000
    batch_timeout_s: float = 0.05
    """How long a poll waits for input when none is ready."""
    commit_interval_s: float = 5.0
    """How often the group's positions are committed: for lag monitoring by standard Kafka
    tools only, recovery rebuilds from the start and never reads them."""
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    dead_letter_retention_s: int | None = None
    """How long the dead-letter topic keeps letters (None: for good); see `streams.letters`."""
    live: bool = False
    """Event time is wall time (a real deployment): quiet inputs do not stop time, the wall
    clock minus the allowed lateness moves every watermark on. Off for recorded or
    simulated events published faster than real time."""
    clock: Callable[[], float] = time.time
    limits: EventLimits = EventLimits()
    """What one event may ask (event time range, area size); beyond it, it is dead-lettered."""
    status_dir: Path | None = None
    """Where the worker keeps its latest status (as announced on `cases`) for operators, in a
    file of its own (`<worker name>.json`, removed when it stops): workers may share the directory."""
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    """A loop that finishes no turn for this long is reported not ready (`/healthz`)."""


@dataclass
class WorkerView:
    """What the web endpoints may show: latest code per owned person, and status."""

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    owned: frozenset[int] = frozenset()
    rule_set: str = ""
    watermark: int = NEVER
    ready: bool = False
    rule_sets: list[str] = field(default_factory=list)
    """Every rule set this worker knows, in order of `valid_from`."""
    settled_through: int = NEVER
    """Every level change up to this event time has been published."""
    health: Health = field(default_factory=lambda: Health(DEFAULT_STALL_TIMEOUT_S, last_progress=time.monotonic()))
    """Broker reachability, loop progress and data loss: why the worker is not ready, if it is not."""


def _notice_message(notice: CaseNotice, partition: int) -> bytes:
    window = notice.window
    return orjson.dumps({
        "type": "case", "partition": partition, "known_at": notice.known_at, "case_ref": window.case_ref,
        "person": window.person, "from": window.infectious_from, "until": window.infectious_until,
        "retracted": window.retracted,
    })


def _notice_of(data: dict[str, Any]) -> CaseNotice | None:
    """The case notice a `cases` message holds; None for anything else (a stranger's message)."""
    try:
        window = CaseWindow(data["case_ref"], data["person"], data["from"], data["until"], data["retracted"])
        notice = CaseNotice(window, data["known_at"])
    except (KeyError, TypeError):
        return None
    fields = (window.case_ref, window.person, window.infectious_from, window.infectious_until,
              window.retracted, notice.known_at)
    types = (str, str, int, (int, type(None)), bool, int)
    return notice if all(isinstance(v, t) for v, t in zip(fields, types)) else None


def write_status(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, through a temporary file no other writer uses."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as sink:
            sink.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


class _Listener(ConsumerRebalanceListener):
    def __init__(self, worker: "Worker") -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # From here on another worker may own them: publish nothing more for their persons.
        self.worker.view.ready = False
        self.worker.disown()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.worker.reassigned = frozenset(tp.partition for tp in assigned)


class Worker:
    """One worker process's loop. `run` until `stop` is set."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        self.history: list[RuleSet] = [config.rules]
        self.view = WorkerView(
            rule_set=config.rules.ref, health=Health(config.stall_timeout_s, last_progress=time.monotonic())
        )
        self.reassigned: frozenset[int] | None = None
        self._owned: frozenset[int] = frozenset()
        self.read_through: dict[tuple[str, int], int] = {}
        """Per input partition, the offset after the last message ever read: its log never ends
        below that unless the broker lost data. Kept across rebuilds, which read it again."""
        self.topics_present = True
        self.rebuild_for_loss = False
        self._reset()

    def disown(self) -> None:
        """Stop scoring and publishing for every partition until the next assignment."""
        self._owned = frozenset()
        self.view.owned = frozenset()

    def _reset(self) -> None:
        config = self.config
        self.scorer = CityScorer(
            self.history,
            owns=lambda person: partition_of(person, config.partitions) in self._owned,
            notices_from_outside=True,
        )
        self.tracker = CaseTracker(self.history)
        self.inputs = TimeOrder()
        self.own_events = TimeOrder()
        self.marks = Watermarks(config.lateness_s, config.idle_s)
        self.visit_marks = Watermarks(config.lateness_s, config.idle_s)
        self.reports = Reports()
        self.emitted: set[str] = set()
        self.dead_lettered = LetterLedger(config.dead_letter_retention_s)
        self.notices_seen: set[bytes] = set()
        self.progress_sent: dict[int, int] = {}
        self.final_at = NEVER
        self.horizon = RebuildHorizon(max(rules.retention_s for rules in self.history))
        self.scored_through = NEVER
        self.view.settled_through = NEVER
        self.view.watermark = NEVER
        self.view.rule_sets = [rules.ref for rules in self.history]
        self.arrived_ms = 0
        self.announced_at = -STATUS_EVERY_S
        self.reissued_at = -STATUS_EVERY_S
        self.committed_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, score and publish until `stop` is set; everything is closed on the way out.

        Stopping takes a few seconds at most, broker or not: the step under way gets
        `STOP_GRACE_S` to finish, then it is cancelled, and closing is bounded too.
        """
        config = self.config
        self.producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, linger_ms=5, acks=1)
        self.group = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap, group_id=config.group, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms, partition_assignment_strategy=(RangePartitionAssignor,),
            max_poll_records=config.batch_size, fetch_max_wait_ms=FETCH_WAIT_MS, metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self.wide = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, enable_auto_commit=False,
                                     max_poll_records=config.batch_size, fetch_max_wait_ms=FETCH_WAIT_MS)
        work = asyncio.create_task(self._work(stop))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait({work}, timeout=STOP_GRACE_S)
            if not work.done():
                log.warning("the step under way did not finish within %g s of the stop: cancelled", STOP_GRACE_S)
                work.cancel()
                await asyncio.wait({work})
            if not work.cancelled():
                work.result()
        finally:
            work.cancel()
            stopping.cancel()
            await self._close()

    async def _work(self, stop: asyncio.Event) -> None:
        config, topics = self.config, self.config.topics
        await self.producer.start()
        await self.group.start()
        await self.wide.start()
        self.group.subscribe([topics.visits], listener=_Listener(self))
        wide = [TopicPartition(topics.pings, p) for p in range(config.partitions)]
        wide += [TopicPartition(t, 0) for t in (topics.areas, topics.cases, topics.rules)]
        self.wide.assign(wide)
        probe = asyncio.create_task(self._probe())
        try:
            while not stop.is_set():
                await self._step()
                self.view.health.progressed(time.monotonic())
                # Polls with data ready return without yielding: let heartbeats and web requests run.
                await asyncio.sleep(0)
        finally:
            probe.cancel()

    async def _close(self) -> None:
        """Close the Kafka clients, all at once and for at most `CLOSE_TIMEOUT_S`; drop the status file."""
        closing = [asyncio.create_task(part.stop()) for part in (self.group, self.wide, self.producer)]
        _, unfinished = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_S)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("the Kafka clients did not close within %g s (broker unreachable?): abandoned", CLOSE_TIMEOUT_S)
        if self.config.status_dir is not None:
            self._status_path().unlink(missing_ok=True)

    async def _probe(self) -> None:
        """Ask the broker for its metadata every `PROBE_EVERY_S`: is it there, are our topics there."""
        while True:
            now = time.monotonic()
            try:
                missing = await self._missing_topics()
            except (KafkaError, OSError, asyncio.TimeoutError) as error:
                self._broker_failed(now, str(error) or type(error).__name__)
            else:
                self._broker_answered(now)
                if missing:
                    self._lost(f"topic {', '.join(missing)} gone")
                self.topics_present = not missing
            self._check_log_ends()
            await asyncio.sleep(PROBE_EVERY_S)

    async def _missing_topics(self) -> list[str]:
        """The worker's topics the broker does not have (a metadata request, bounded in time)."""
        cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        return sorted({self.config.topics.name(spec.role) for spec in SPECS} - cluster.topics())

    def _broker_failed(self, now: float, error: str) -> None:
        metrics.BROKER_UP.set(0)
        if self.view.health.broker_failed(now, error):
            log.warning("the broker at %s does not answer: %s", self.config.bootstrap, error)

    def _broker_answered(self, now: float) -> None:
        metrics.BROKER_UP.set(1)
        began = self.view.health.broker_answered()
        if began is not None:
            log.warning("the broker at %s answers again after %.0f s", self.config.bootstrap, now - began)

    def _check_log_ends(self) -> None:
        """An input partition whose log now ends below what was read from it: the broker lost data."""
        for consumer in (self.wide, self.group):
            for tp in consumer.assignment():
                end, read = consumer.highwater(tp), self.read_through.get((tp.topic, tp.partition))
                if end is not None and read is not None and end < read:
                    self._lost(f"{tp.topic}[{tp.partition}] ends at offset {end}, {read} were read")

    def _lost(self, what: str) -> None:
        """The broker lost data: rebuild from what it has once every topic is there; say so once."""
        self.rebuild_for_loss = True
        self.read_through.clear()
        if self.view.health.data_lost:
            return
        log.error("the broker lost data (%s): the worker rebuilds from what it has now", what)
        metrics.BROKER_DATA_LOSSES.inc()
        self.view.health.lost_data(what)

    def _saw(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batches.items():
            if records:
                key = (tp.topic, tp.partition)
                self.read_through[key] = max(self.read_through.get(key, 0), records[-1].offset + 1)

    async def _step(self) -> None:
        if not self.topics_present:
            # The broker lost the topics: anything written now would create them with its
            # defaults, not the layout `healthcode topics create` gives. Wait for them.
            await asyncio.sleep(self.config.batch_timeout_s)
            return
        own = await self.group.getmany(timeout_ms=0, max_records=self.config.batch_size)
        if self.rebuild_for_loss and self.reassigned is None:
            self.rebuild_for_loss = False
            self.reassigned = self._owned
        if self.reassigned is not None:
            # Taken before the rebuild: an assignment that arrives during it is rebuilt for next.
            owned, self.reassigned = self.reassigned, None
            try:
                await self._rebuild(owned)
            except RebuildDeferred as deferred:
                log.warning("rebuild deferred: %s", deferred)
                if self.reassigned is None:
                    self.reassigned = owned
                await asyncio.sleep(self.config.batch_timeout_s)
            return
        if not self._owned and not self.view.ready:
            return
        wait_ms = 0 if own else int(self.config.batch_timeout_s * 1000)
        wide = await self.wide.getmany(timeout_ms=wait_ms, max_records=self.config.batch_size)
        self._saw(own)
        self._saw(wide)
        now = time.monotonic()
        for records in list(own.values()) + list(wide.values()):
            for record in records:
                await self._take(record, now)
        await self._note_caught_up()
        await self._track_cases(now)
        await self._score(now)
        await self._announce(now)
        await self._reissue(now)
        await self._commit(now)

    async def _reissue(self, now: float) -> None:
        """Re-issue, before it expires, the code of every owned person who is still active.

        Active: the core still holds facts about them (within the rules' longest window).
        A re-issue is the same change with a fresh code, so it keeps its change id.
        """
        if now - self.reissued_at < STATUS_EVERY_S:
            return
        self.reissued_at = now
        config = self.config
        wall = int(config.clock())
        due = [
            record for person, record in self.view.codes.items()
            if parse_rfc3339(record["expires_at"]) - wall < config.code_validity_s // 4
            and partition_of(person, config.partitions) in self._owned
            and self.scorer.people.state(person).has_facts()
        ]
        if not due:
            return
        key = signing_key_at(config.keys, wall)
        for record in due:
            fresh = signed(record, key, issuer=config.issuer, issued_at=wall, validity_s=config.code_validity_s)
            await self.producer.send(config.topics.codes, encode_record(fresh), key=record["person"].encode())
            self.view.codes[record["person"]] = fresh
            metrics.CODES_REISSUED.inc()

    async def _commit(self, now: float) -> None:
        """Commit the positions reached on the owned partitions (consumer lag for operators)."""
        if now - self.committed_at < self.config.commit_interval_s or not self._owned:
            return
        self.committed_at = now
        try:
            await self.group.commit()
        except (CommitFailedError, IllegalStateError):
            # A rebalance is under way: the next owner commits its own positions.
            return

    async def _announce(self, now: float) -> None:
        """Tell everyone (`healthcode rules active`) what this worker runs, every few seconds."""
        if now - self.announced_at < STATUS_EVERY_S:
            return
        self.announced_at = now
        status = {
            "type": WORKER_STATUS, "worker": self.name, "rule_set": self.view.rule_set,
            "rule_sets": [r.ref for r in self.history], "partitions": sorted(self._owned),
            "watermark": self.view.watermark, "at": int(self.config.clock()),
        }
        message = orjson.dumps(status)
        await self.producer.send(self.config.topics.cases, message)
        if self.config.status_dir is not None:
            try:
                write_status(self._status_path(), message)
            except OSError as error:
                # Bookkeeping for operators: never a reason to stop scoring.
                log.warning("cannot write the status file %s: %s", self._status_path(), error.strerror)

    def _status_path(self) -> Path:
        assert self.config.status_dir is not None
        return self.config.status_dir / f"{self.name}.json"

    async def _rebuild(self, owned: frozenset[int]) -> None:
        """Start over for a new assignment: read every input again, skip changes already published."""
        config, topics = self.config, self.config.topics
        # The probe may not have seen yet that the topics are gone; a fence written now
        # would create them with the broker's defaults (and the embedded broker then
        # wedges the partition when `topics create` runs).
        try:
            missing = await self._missing_topics()
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            raise RebuildDeferred(f"the broker does not answer: {error}") from None
        if missing:
            self.topics_present = False
            self._lost(f"topic {', '.join(missing)} gone")
            raise RebuildDeferred(f"topic {', '.join(missing)} gone")
        self._owned = owned
        await self._load_rules()
        self._reset()
        now = time.monotonic()
        self.marks.track([(topics.pings, p) for p in range(config.partitions)], now)
        self.marks.track([(topics.areas, 0)], now)
        self.marks.track([(topics.cases, p) for p in range(config.partitions)], now, may_idle=False)
        self.visit_marks.track([(topics.visits, p) for p in owned], now)
        mine = [TopicPartition(topics.visits, p) for p in owned]
        if mine:
            await self.group.seek_to_beginning(*mine)
        await self.wide.seek_to_beginning()
        starts = await self.wide.beginning_offsets([TopicPartition(topics.pings, p) for p in range(config.partitions)])
        self.horizon.truncated = any(offset > 0 for offset in starts.values())
        await self._load_published(owned)
        await self._load_dead_letters()
        self.view.owned = owned
        self.view.ready = True
        if self.topics_present:
            self.view.health.rebuilt()
        metrics.REBUILDS.inc()

    async def _read_to_fence(self, topic: str, partitions: frozenset[int]) -> list[bytes]:
        try:
            return await asyncio.wait_for(
                read_to_fence(self.producer, self.config.bootstrap, topic, partitions, self.name), FENCE_TIMEOUT_S
            )
        except asyncio.TimeoutError:
            raise RebuildDeferred(f"{topic}: the fence written did not come back within {FENCE_TIMEOUT_S:g} s") from None

    async def _load_rules(self) -> None:
        """The rule history: the configured set, then every set published on `rules`."""
        history = [self.config.rules]
        for message in await self._read_to_fence(self.config.topics.rules, frozenset({0})):
            published = read_rule_set(message)
            if published is not None:
                history = history_with(history, published) or history
        self.history = history

    async def _load_dead_letters(self) -> None:
        """Positions already dead-lettered (by us before a rebuild, or by a worker before us),
        and whether retention deleted the oldest letters (`streams.letters`)."""
        topic = self.config.topics.dead_letter
        for message in await self._read_to_fence(topic, frozenset({0})):
            letter = read_letter(message)
            if letter is not None:
                self.dead_lettered.found((letter.topic, letter.partition, letter.offset))
        starts = await self.wide.beginning_offsets([TopicPartition(topic, 0)])
        self.dead_lettered.loaded(any(offset > 0 for offset in starts.values()), self.config.clock())

    async def _load_published(self, owned: frozenset[int]) -> None:
        """The change ids already on `codes` for the owned partitions."""
        if not owned:
            return
        for message in await self._read_to_fence(self.config.topics.codes, owned):
            data = json_object(message)
            if data.get("type") == "code" and isinstance(data.get("change_id"), str) and isinstance(
                data.get("person"), str
            ):
                self.emitted.add(data["change_id"])
                self.view.codes[data["person"]] = data

    async def _take(self, record: Any, now: float) -> None:
        topics = self.config.topics
        if record.topic == topics.cases:
            self._take_case_message(record.value, now)
            return
        if record.topic == topics.rules:
            published = read_rule_set(record.value)
            if published is not None and history_with(self.history, published) is not None:
                self.reassigned = self._owned
            return
        outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                         now=intake_clock(record.timestamp, self.config.clock()), limits=self.config.limits)
        if isinstance(outcome, Rejected):
            # Every worker reads pings and areas; the owner of the same-numbered partition answers for them.
            position = (record.topic, record.partition, record.offset)
            mine = record.topic == topics.visits or record.partition in self._owned
            if mine and self.dead_lettered.due(position, record.timestamp):
                await asend_dead_letter(self._send, topics.dead_letter, outcome)
            return
        ts = to_epoch(outcome.ts)
        metrics.events_in(outcome.type).inc()
        if ts <= self.scored_through:
            metrics.LATE_EVENTS.inc()
        self.arrived_ms = max(self.arrived_ms, record.timestamp)
        source = (record.topic, record.partition)
        if record.topic == topics.visits:
            self.visit_marks.saw(source, ts, now)
            self.own_events.push(ts, outcome)
        else:
            self.marks.saw(source, ts, now)
            if record.topic == topics.pings:
                self.horizon.saw_ping(record.partition, ts)
        self.inputs.push(ts, outcome)

    def _take_case_message(self, value: bytes, now: float) -> None:
        """A case notice or a progress marker; status and anything unknown are ignored."""
        data = json_object(value)
        kind, partition = data.get("type"), data.get("partition")
        if kind not in ("progress", "case") or not isinstance(partition, int):
            return
        source = (self.config.topics.cases, partition)
        if kind == "progress":
            if isinstance(data.get("through"), int):
                self.marks.progress(source, data["through"], now)
            return
        notice = _notice_of(data)
        if notice is not None and value not in self.notices_seen:
            self.notices_seen.add(value)
            self.inputs.push(notice.known_at, notice)

    async def _note_caught_up(self) -> None:
        # Two consumers fetch on their own schedules: a visits partition reported at its end a
        # moment ago must not count as far as pings read since (see `Reports`). The client
        # stamps its fetch answers in wall milliseconds.
        self.reports.saw(time.time() * 1000, max(self.marks.newest(), self.visit_marks.newest()))
        for consumer, marks in ((self.wide, self.marks), (self.group, self.visit_marks)):
            for tp in consumer.assignment():
                source = (tp.topic, tp.partition)
                vouched = self.reports.vouched(source, consumer.last_poll_timestamp(tp))
                highwater = consumer.highwater(tp)
                done = highwater is not None and await consumer.position(tp) >= highwater
                marks.caught_up(source, vouched if done else None)

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send(topic, value=value, key=key)

    async def _track_cases(self, now: float) -> None:
        """Own person events in time order -> case notices and progress on `cases`."""
        topics, partitions = self.config.topics, self.config.partitions
        newest = max(self.visit_marks.newest(), self.marks.newest())
        through = self.visit_marks.aligned(now, newest=newest, floor=self._floor())
        released, _ = self.own_events.release(through)
        for _, event in released:
            for notice in self.tracker.apply(event):
                origin = partition_of(notice.window.person, partitions)
                await self.producer.send(topics.cases, _notice_message(notice, origin))
        for partition in self._owned:
            if through > self.progress_sent.get(partition, NEVER):
                self.progress_sent[partition] = through
                message = {"type": "progress", "partition": partition, "through": through}
                await self.producer.send(topics.cases, orjson.dumps(message))

    async def _score(self, now: float) -> None:
        watermark = self.marks.aligned(now, floor=self._floor())
        if watermark == NEVER:
            return
        # A bounded step keeps the event loop (and the group heartbeat) responsive.
        released, watermark = self.inputs.release(watermark, limit=4 * self.config.batch_size)
        pings: list[Ping] = []
        for _, item in released:
            if isinstance(item, Ping):
                pings.append(item)
                continue
            self._feed_pings(pings)
            pings = []
            if isinstance(item, CaseNotice):
                self.scorer.case_notice(item)
            else:
                self.scorer.add_event(item)
        self._feed_pings(pings)
        self.scored_through = max(self.scored_through, watermark)
        # In live mode the wall clock completes ticks; settling a partial one early would
        # make the rest of it late.
        final = (
            not self.config.live and self.marks.idle(now) and watermark >= self.marks.newest() and len(self.inputs) == 0
            and watermark > self.final_at
        )
        if final:
            self.final_at = watermark
            self.view.settled_through = watermark
        self.scorer.advance_to(watermark, final=final)
        self.view.watermark = watermark
        self.view.rule_set = self.scorer.rules.ref
        metrics.WATERMARK_LAG.set(max(0, self.marks.newest() - watermark))
        await self._publish(self.scorer.take_changes())

    def _floor(self) -> int:
        """Live mode: no watermark is below the wall clock minus the allowed lateness."""
        return int(self.config.clock()) - self.config.lateness_s if self.config.live else NEVER

    def _feed_pings(self, pings: list[Ping]) -> None:
        if not pings:
            return
        self.scorer.add_pings(
            np.array([p.person for p in pings], dtype=object),
            np.array([to_epoch(p.ts) for p in pings], dtype=np.int64),
            np.array([p.lat for p in pings]),
            np.array([p.lon for p in pings]),
        )

    async def _publish(self, changes: list[PersonChange]) -> None:
        if not changes:
            return
        config = self.config
        issued_at = int(config.clock())
        key = signing_key_at(config.keys, issued_at)
        for change in changes:
            identity = change_id(change.person, change.at, change.level, change.rule_set)
            if (
                identity in self.emitted or change.at < self.horizon.publish_from
                or partition_of(change.person, config.partitions) not in self._owned
            ):
                continue
            record = {"type": "code", **code_record(
                change, key, issuer=config.issuer, issued_at=issued_at, validity_s=config.code_validity_s
            )}
            await self.producer.send(config.topics.codes, encode_record(record), key=change.person.encode())
            self.emitted.add(identity)
            self.view.codes[change.person] = record
            metrics.CODES_ISSUED.labels(change.level).inc()
            if self.arrived_ms:
                metrics.LATENCY.observe(max(0.0, config.clock() - self.arrived_ms / 1000))
