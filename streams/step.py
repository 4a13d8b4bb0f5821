"""The worker's decisions, without Kafka: records and a clock reading in, messages to send out.

A `Step` holds one assignment's state (the scoring core, case tracking, watermarks,
what is already published). The shell around it (`streams.app`, on Faust) does the
I/O: it reads the fenced topics on assignment and hands what it found to `Known`,
feeds every consumed record to `Step.take`, and on every turn calls
`Step.advance` with the clock and the partitions' high watermarks, then sends the
messages it returns. Tests drive a `Step` the same way, with no broker
(`tests/unit/streams/test_step.py`).

Topology (see README "The pipeline"):
- person events (`visits`) come from the partitions this worker owns; it scores
  those persons and publishes their codes;
- pings, area designations, rule sets and case notices are read whole by every
  worker: contacts cross partitions, so every worker's presence index sees everyone;
- a worker learns of its own persons' cases ahead of scoring (`CaseTracker`) and
  broadcasts them on `cases` with progress markers, so every worker hears of every
  case before scoring past it.

Recovery is by rebuilding: a new `Step` for every assignment (or new rule set) is fed
its inputs from the beginning again (the core is deterministic) and does not send a
change already on `codes` nor dead-letter a position twice (`Known`, read up to a
fence). Nothing is lost, nothing is applied twice. A worker process restarted with the
same partitions resumes instead from a snapshot of its `Step` (`streams.resume`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from kafka.partitioner.default import murmur2

from codes import SigningKey, signing_key_at
from codes.access import RatePolicy, keyed_ref
from scoring.assess import Assessment, assess
from scoring.city import CaseNotice, CityScorer, LocalPresence, index_plans
from scoring.events import Ping
from scoring.exposure import CaseWindow, Exposure
from scoring.limits import EventLimits
from scoring.notices import CaseTracker
from scoring.people import PersonChange
from scoring.regions import RemotePresence
from scoring.rules import RuleSet
from scoring.timeline import (
    TIMELINE_VERSION, Ledger, Line, change_key, corrections, early_escalations, fold, record_key,
)
from scoring.timeutil import to_epoch
from streams import metrics
from streams.deadletter import DEAD_LETTERED, Rejected
from streams.eventtime import NEVER, Reports, TimeOrder, Watermarks
from streams.health import DEFAULT_STALL_TIMEOUT_S, Health
from streams.horizon import RebuildHorizon
from streams.intake import intake_clock, triage
from streams.issuing import code_record, encode_record, signed
from streams.letters import LetterLedger
from streams.reading import json_object
from streams.rulebook import history_with, read_rule_set
from streams.topics import Topics
from streams.wire import Exposures, Malformed, passed_over, rule_refs

WORKER_STATUS = "worker"
STATUS_EVERY_S = 2.0

Source = tuple[str, int]
"""An input partition: (topic, partition)."""


@dataclass(frozen=True)
class End:
    """What the consumer of an input partition last heard from the broker about its end."""

    highwater: int | None
    """The offset after the partition's last message, as of that answer (None: no answer yet)."""
    answered_ms: float | None
    """When the client received that answer, on the clock of `Step.advance`'s `read_ms`."""


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
    code_validity_s: int = 5 * 60
    """How long a code signed for a resident's request is valid (`streams.web`)."""
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
    web_port: int = 0
    """Port of /healthz, /metrics, /residents/{pseudonym}/code and /app/resident (0: no web server)."""
    resident_secrets: list[bytes] = field(default_factory=list, repr=False)
    """The current resident secret, then the previous one if kept (`codes.keystore.resident_secrets`):
    they check residents' access tokens. None given: no token is accepted."""
    reference_secret: bytes | None = field(default=None, repr=False)
    """Keys the case references workers tell each other on `cases` (`codes.access.keyed_ref`), so no
    one without it can link a contact's reasons to a case. None: the core's own references (tests)."""
    token_rate: RatePolicy = RatePolicy(per_minute=30, burst=10)
    """How often one resident may ask for their code."""
    client_rate: RatePolicy = RatePolicy(per_minute=600, burst=60)
    """How often one client address may ask for codes, whoever's (guessing tokens counts too)."""
    web_image_limit: int | None = None
    """How many QR images the web port renders at once (None: `streams.images`' default)."""
    data_dir: Path | None = None
    """Where Faust may keep its files (default: a temporary directory) and the worker its
    snapshots (`streams.snapshots`; none without a directory)."""
    snapshot_every_s: float = 0.0
    """How often the worker snapshots its state, in seconds between turns (0: never)."""
    stages: bool = True
    """Presence runs in stages of its own (`streams.stages`): stays per ping partition, presence
    per region partition; this worker's `Step` scores from what they send on `exposures`."""


def live_floor(config: WorkerConfig, wall: float) -> int:
    """Live mode: no watermark is below the wall clock minus the allowed lateness (NEVER otherwise)."""
    return int(wall) - config.lateness_s if config.live else NEVER


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
    residents: set[str] = field(default_factory=set)
    """Every person any event has named so far: a resident who never changed level is green, not unknown."""
    rules: dict[str, RuleSet] = field(default_factory=dict)
    """Every rule set this worker knows, by ref (the words of a resident's reasons)."""
    assess: Callable[[str, int], tuple[Assessment, RuleSet]] | None = None
    """The core's assessment of an owned person at an event time, from the facts it holds, and
    the rule set in force then (None until a `Step` holds the partitions)."""


@dataclass(frozen=True)
class Record:
    """One consumed message, whichever client consumed it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """The broker's (or producer's) timestamp: when it arrived, for the event-to-code latency."""


@dataclass(frozen=True)
class Message:
    """One message to send; `partition` None lets the key choose."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


@dataclass(frozen=True)
class Output:
    """What a turn decided: messages to send in this order, and what to tell once they are sent."""

    messages: list[Message]
    status: bytes | None = None
    """The status this turn announced on `cases` (for the worker's status file)."""
    settled_through: int | None = None
    """Every level change up to this event time is among the messages sent so far, these included."""
    more: bool = False
    """Work is ready that this turn's bound left: turn again without waiting for input."""


@dataclass
class Known:
    """What is already on the fenced topics when an assignment starts."""

    history: list[RuleSet]
    """The configured rule set, then every set published on `rules`, in order of `valid_from`."""
    shown: dict[str, list[Line]] = field(default_factory=dict)
    """What the records on `codes` show for each owned person: their timeline, folded (`scoring.timeline`)."""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The latest code record on `codes` per owned person."""
    dead_lettered: LetterLedger = field(default_factory=lambda: LetterLedger(None))
    """Positions already dead-lettered (by this worker before, or by another), and which
    inputs' letters retention may have deleted."""
    pings_truncated: bool = False
    """Retention deleted pings: some pings partition no longer starts at offset 0."""

    @staticmethod
    def read(
        config: WorkerConfig, rules: Iterable[bytes], codes: Iterable[bytes], letters: Iterable[bytes],
        wall: float, pings_truncated: bool = False, letters_truncated: bool = False,
    ) -> "Known":
        """Make sense of the messages read up to the fences (`wall`: the wall clock then);
        `letters_truncated`: retention deleted the oldest dead letters. Anything unrecognised
        is passed over."""
        history = [config.rules]
        for message in rules:
            published = read_rule_set(message)
            if published is not None:
                history = history_with(history, published) or history
        known = Known(history, dead_lettered=LetterLedger(config.dead_letter_retention_s),
                      pings_truncated=pings_truncated)
        for data, line in code_lines(codes):
            fold(known.shown.setdefault(data["person"], []), line)
            known.codes[data["person"]] = data
        known.dead_lettered.found_in(letters)
        known.dead_lettered.loaded(letters_truncated, wall)
        return known


def code_lines(messages: Iterable[bytes]) -> Iterator[tuple[dict[str, Any], Line]]:
    """The code records among messages read from `codes`, each with its timeline line;
    anything else (fences, a stranger's bytes) is passed over."""
    for message in messages:
        data = json_object(message)
        if (data.get("type") == "code" and isinstance(data.get("change_id"), str)
                and isinstance(data.get("person"), str)):
            try:
                yield data, Line(record_key(data), data)
            except (KeyError, TypeError, ValueError):
                continue


def _notice_message(notice: CaseNotice, partition: int, secret: bytes | None, kind: str = "case") -> bytes:
    """A case notice on `cases`; `kind` "early_case": a window the owner's events not yet in
    event-time order give, for early escalations only (see `Step._early_cases`)."""
    window = notice.window
    # Keyed: the core's reference hashes the case's pseudonym and event id, which anyone could guess.
    case_ref = window.case_ref if secret is None else keyed_ref(secret, window.case_ref)
    return orjson.dumps({
        "type": kind, "partition": partition, "known_at": notice.known_at, "case_ref": case_ref,
        "person": window.person, "from": window.infectious_from, "until": window.infectious_until,
        "retracted": window.retracted,
    })


def notice_of(data: dict[str, Any]) -> CaseNotice | None:
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


class Positions:
    """Where each input partition's replay starts, and the offset of the next record to take.

    A record of a partition is ignored until the one at its start arrives, and a record at
    an offset already taken is ignored (a client may deliver again what it fetched before a seek).
    """

    def __init__(self, starts: Mapping[Source, int] | None) -> None:
        self._starts = dict(starts or {})
        self._next: dict[Source, int] = {}

    def fresh(self, record: Record) -> bool:
        """Take `record` (True), or ignore it."""
        source = (record.topic, record.partition)
        start = self._starts.get(source)
        expected = self._next.get(source, start)
        if start is not None and source not in self._next and record.offset != start:
            return False
        if expected is not None and record.offset < expected:
            return False
        self._next[source] = record.offset + 1
        return True

    def position(self, source: Source) -> int | None:
        """The offset of the next record of `source` to take (None: no record taken and no start known)."""
        return self._next.get(source, self._starts.get(source))

    def covered(self) -> dict[Source, int]:
        """Per partition, the offset of the next record to take (what a snapshot covers)."""
        return {source: self.position(source) or 0 for source in {*self._starts, *self._next}}


class Step:
    """One assignment's decisions: `take` records as they come, `advance` on every turn."""

    def __init__(
        self, config: WorkerConfig, name: str, owned: frozenset[int], known: Known, now: float,
        view: WorkerView | None = None, starts: Mapping[Source, int] | None = None,
    ) -> None:
        """A fresh start for `owned` partitions; `now` is the worker's monotonic clock.

        `starts`: the first offset of each input partition, where its replay begins;
        a record of that partition is ignored until the one at its start arrives, and
        a record at an offset already taken is ignored (a client may deliver again
        what it fetched before a seek).
        """
        self.config = config
        self.name = name
        self.owned = owned
        self.history = known.history
        self.view = view if view is not None else WorkerView()
        remote = RemotePresence(index_plans(self.history)) if config.stages else None
        self.scorer = CityScorer(
            # A method, not a closure: a snapshot of the step pickles it (`streams.resume`).
            self.history, owns=self._mine, notices_from_outside=True,
            presence=LocalPresence if remote is None else lambda plans: remote,
        )
        self.exposures = None if remote is None else Exposures(config.partitions, owned, remote, rule_refs(self.history))
        """Staged (`config.stages`): the presence stage's answers, taken from `exposures`."""
        self.scorer.people.noted = {}
        self.tracker = CaseTracker(self.history)
        self.inputs = TimeOrder()
        self.own_events = TimeOrder()
        self.marks = Watermarks(config.lateness_s, config.idle_s)
        self.visit_marks = Watermarks(config.lateness_s, config.idle_s)
        self.reports = Reports()
        # What earlier workers published is checked against the settled timeline as it is reached
        # (an early escalation of a worker that died may not hold).
        self.ledger = Ledger(shown={person: list(lines) for person, lines in known.shown.items()},
                             open_from={person: lines[0].at for person, lines in known.shown.items() if lines})
        self.pending: dict[str, list[tuple[int, Any]]] = {}
        """Owned persons' events taken and not yet scored, in arrival order: early escalations count them."""
        self.dirty: dict[str, int] = {}
        """Owned persons to look at for early escalations, from which moment on."""
        self.early_cases: dict[str, CaseNotice] = {}
        """Cases announced early (by case reference) that scoring has not reached yet."""
        self.early_sent: set[bytes] = set()
        self.dead_lettered = known.dead_lettered
        self.notices_seen: set[bytes] = set()
        self.progress_sent: dict[int, int] = {}
        self.reported: dict[int, dict[str, Any]] = {}
        self.final_at = NEVER
        self.horizon = RebuildHorizon(max(rules.retention_s for rules in self.history), known.pings_truncated)
        self.scored_through = NEVER
        self.arrived_ms = 0
        self.announced_at = -STATUS_EVERY_S
        self.new_rules = False
        """A rule set not in the history arrived: the shell must start over (a new `Step`)."""
        self._outbox: list[Message] = []
        self.positions = Positions(starts)
        topics, partitions = config.topics, config.partitions
        if self.exposures is None:
            self.marks.track([(topics.pings, p) for p in range(partitions)], now)
        else:
            # Presence is as far as every region partition (a partition of `stays`) has reported on
            # `exposures`: progress, never an end offset.
            self.marks.track([(topics.stays, r) for r in range(partitions)], now, may_idle=False)
        self.marks.track([(topics.areas, 0)], now)
        self.marks.track([(topics.cases, p) for p in range(partitions)], now, may_idle=False)
        self.visit_marks.track([(topics.visits, p) for p in owned], now)
        self.show(known.codes, set())

    def show(self, codes: dict[str, dict[str, Any]], residents: set[str]) -> None:
        """Let the view show this step: `codes`, the latest code per owned person, and `residents`,
        every person named so far (on a fresh start, or on resuming from a snapshot)."""
        view = self.view
        view.codes = dict(codes)
        view.owned = self.owned
        view.rule_set = self.scorer.rules.ref
        view.rule_sets = [rules.ref for rules in self.history]
        view.rules = {rules.ref: rules for rules in self.history}
        view.residents = residents
        view.assess = self.resident_assessment
        view.watermark = self.scored_through
        view.settled_through = self.final_at
        view.ready = True

    def resident_assessment(self, person: str, at: int) -> tuple[Assessment, RuleSet]:
        """An owned person's level and reasons at event time `at` from the facts scored so far
        (a resident's current code; green with no reasons when no fact is held)."""
        rules = self.tracker.rules_at(at)
        return assess(self.scorer.people.state(person), rules, at), rules

    def disown(self) -> None:
        """Partitions revoked: from here on another worker may own them, send nothing more for them."""
        self.owned = frozenset()
        self.view.owned = frozenset()
        self.view.ready = False

    def run(self, records: Iterable[Record], now: float, wall: float,
            ends: Mapping[Source, End] | None = None, read_ms: float = 0.0) -> Output:
        """`take` then `advance`: one turn of a worker that read `records`."""
        self.take(records, now, wall)
        return self.advance(now, wall, ends or {}, read_ms)

    def take(self, records: Iterable[Record], now: float, wall: float) -> None:
        """Consumed records, in their partitions' order; `now` is the worker's monotonic clock,
        `wall` the wall clock (it caps the intake clock events are judged at)."""
        for record in records:
            if self.positions.fresh(record):
                self._take(record, now, wall)

    def position(self, source: Source) -> int | None:
        """The offset of the next record of `source` to take (None: no record taken and no start known)."""
        return self.positions.position(source)

    def advance(self, now: float, wall: float, ends: Mapping[Source, End], read_ms: float) -> Output:
        """Release what the watermarks allow to the core; the messages this turn sends.

        `now` is the worker's monotonic clock, `wall` the wall clock (signing, live
        mode), `ends` what each consumed partition's client last heard of its end (a
        partition whose position reached it is caught up), `read_ms` the clock its
        answers are stamped on, now: a report of an end vouches only for what had been
        read by the answer before it (see `streams.eventtime.Reports`).
        """
        self.reports.saw(read_ms, max(self.marks.newest(), self.visit_marks.newest()))
        for source, end in ends.items():
            position = self.position(source)
            vouched = self.reports.vouched(source, end.answered_ms)
            done = end.highwater is not None and position is not None and position >= end.highwater
            marks = self.visit_marks if source[0] == self.config.topics.visits else self.marks
            marks.caught_up(source, vouched if done else None)
        out, self._outbox = self._outbox, []
        if not self.owned and not self.view.ready:
            return Output(out)
        self._track_cases(now, wall, out)
        settled = self._score(now, wall, out)
        self._escalate(wall, out)
        status = self._announce(now, wall, out)
        return Output(out, status, settled)

    def _take(self, record: Record, now: float, wall: float) -> None:
        topics = self.config.topics
        if record.topic == topics.cases:
            self._take_case_message(record.value, now)
            return
        if record.topic == topics.exposures and self.exposures is not None:
            try:
                origin, heard, first = self.exposures.take(record.partition, record.value)
            except Malformed as error:
                passed_over(record.topic, record.partition, record.offset, error)
                return
            if first is not None:
                self.horizon.reported(origin, first)
            self.marks.progress((topics.stays, origin), heard, now)
            return
        if record.topic == topics.rules:
            published = read_rule_set(record.value or b"")
            if published is not None and history_with(self.history, published) is not None:
                self.new_rules = True
            return
        outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                         now=intake_clock(record.timestamp_ms, wall), limits=self.config.limits)
        if isinstance(outcome, Rejected):
            # Every worker reads pings and areas; the owner of the same-numbered partition answers for them.
            position = (record.topic, record.partition, record.offset)
            mine = record.topic == topics.visits or record.partition in self.owned
            if mine and self.dead_lettered.due(position, record.timestamp_ms):
                self._outbox.append(Message(topics.dead_letter, outcome.topic.encode(), outcome.to_bytes()))
                DEAD_LETTERED.labels(outcome.topic, outcome.kind).inc()
            return
        ts = to_epoch(outcome.ts)
        metrics.events_in(outcome.type).inc()
        person = getattr(outcome, "person", None)
        if person is not None:
            self.view.residents.add(person)
        if ts <= self.scored_through:
            metrics.LATE_EVENTS.inc()
        self.arrived_ms = max(self.arrived_ms, record.timestamp_ms)
        source = (record.topic, record.partition)
        if record.topic == topics.visits:
            self.visit_marks.saw(source, ts, now)
            self.own_events.push(ts, outcome)
            self.pending.setdefault(outcome.person, []).append((ts, outcome))
            self.dirty[outcome.person] = min(ts, self.dirty.get(outcome.person, ts))
        else:
            self.marks.saw(source, ts, now)
            if record.topic == topics.pings:
                self.horizon.saw_ping(record.partition, ts)
        self.inputs.push(ts, outcome)

    def _take_case_message(self, value: bytes | None, now: float) -> None:
        """A case notice or a progress marker; status and anything unknown are ignored."""
        data = json_object(value)
        kind, partition = data.get("type"), data.get("partition")
        if kind not in ("progress", "case", "early_case") or not isinstance(partition, int):
            return
        source = (self.config.topics.cases, partition)
        if kind == "progress":
            # A partition no worker has would be waited for forever: the watermark is every partition's.
            if isinstance(data.get("through"), int) and 0 <= partition < self.config.partitions:
                self.marks.progress(source, data["through"], now)
            return
        notice = notice_of(data)
        if kind == "early_case":
            self._hear_early(notice)
            return
        if notice is not None and value not in self.notices_seen:
            self.notices_seen.add(value)
            self.inputs.push(notice.known_at, notice)

    def _hear_early(self, notice: CaseNotice | None) -> None:
        """A case announced early: looked for among this worker's persons until scoring reaches it."""
        if notice is not None and notice.known_at > self.scored_through:
            self.early_cases[notice.window.case_ref] = notice

    def _track_cases(self, now: float, wall: float, out: list[Message]) -> None:
        """Own person events in time order -> case notices and progress on `cases`."""
        topics, partitions = self.config.topics, self.config.partitions
        newest = max(self.visit_marks.newest(), self.marks.newest())
        through = self.visit_marks.aligned(now, newest=newest, floor=live_floor(self.config, wall))
        released, _ = self.own_events.release(through)
        for _, event in released:
            for notice in self.tracker.apply(event):
                origin = partition_of(notice.window.person, partitions)
                out.append(Message(topics.cases, None, _notice_message(notice, origin, self.config.reference_secret)))
        report: dict[str, Any] = {}
        if self.exposures is not None:
            # For the city clock (`streams.stages.CityClock`): the newest visit or designation read, and idle.
            areas = self.marks.clocks[(topics.areas, 0)].max_ts
            report = {"newest": max(self.visit_marks.newest(), areas),
                      "idle": self.visit_marks.idle(now) and self.marks.idle(now) and len(self.own_events) == 0}
        for partition in sorted(self.owned):
            told = self.exposures is not None and report != self.reported.get(partition)
            if through > self.progress_sent.get(partition, NEVER) or told:
                self.progress_sent[partition] = max(through, self.progress_sent.get(partition, NEVER))
                self.reported[partition] = report
                message = {"type": "progress", "partition": partition, "through": through, **report}
                out.append(Message(topics.cases, None, orjson.dumps(message)))

    def _score(self, now: float, wall: float, out: list[Message]) -> int | None:
        """Feed the core what the watermark releases; the event time settled now, if any."""
        watermark = self.marks.aligned(now, floor=live_floor(self.config, wall))
        if watermark == NEVER:
            return None
        settled = None
        if self.exposures is not None:
            # Staged: the finals are the regions' (decided once upstream), made in order as reached.
            for moment in [m for m in self.exposures.finals() if self.final_at < m <= watermark]:
                self._release(moment)
                self.scorer.advance_to(moment, final=True)
                self.final_at = settled = moment
        # A bounded step keeps the event loop (and the group heartbeat) responsive.
        watermark = self._release(watermark, limit=4 * self.config.batch_size)
        # In live mode the wall clock completes ticks; settling a partial one early would
        # make the rest of it late.
        final = (
            self.exposures is None and not self.config.live and self.marks.idle(now)
            and watermark >= self.marks.newest() and len(self.inputs) == 0 and watermark > self.final_at
        )
        if final:
            self.final_at = settled = watermark
        self.scorer.advance_to(watermark, final=final)
        self.view.watermark = watermark
        self.view.rule_set = self.scorer.rules.ref
        metrics.WATERMARK_LAG.set(max(0, self.marks.newest() - watermark))
        self._publish(self.scorer.take_changes(), wall, out)
        return settled

    def _release(self, watermark: int, limit: int | None = None) -> int:
        """Feed the core the inputs up to `watermark` (about `limit` at most); how far that completes."""
        released, watermark = self.inputs.release(watermark, limit=limit)
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
                self._scored(item)
        self._feed_pings(pings)
        self.scored_through = max(self.scored_through, watermark)
        return watermark

    def _scored(self, event: Any) -> None:
        """An owned person's event reached the core: no longer pending."""
        waiting = self.pending.get(getattr(event, "person", ""))
        if waiting is None:
            return
        for index, (_, held) in enumerate(waiting):
            if held is event:
                del waiting[index]
                break
        if not waiting:
            del self.pending[event.person]

    def _feed_pings(self, pings: list[Ping]) -> None:
        if not pings:
            return
        self.scorer.add_pings(
            np.array([p.person for p in pings], dtype=object),
            np.array([to_epoch(p.ts) for p in pings], dtype=np.int64),
            np.array([p.lat for p in pings]),
            np.array([p.lon for p in pings]),
        )

    def _publish(self, changes: list[PersonChange], wall: float, out: list[Message]) -> None:
        """Good news when certain, the past corrected (see `scoring.timeline`; `_escalate`: bad news at once).

        Settled changes join each person's settled timeline; where what was published
        disagrees with it up to the settled moment, superseding records correct it.
        """
        ledger, through = self.ledger, self.scorer.settled_through
        through = NEVER if through is None else through
        touched: set[str] = set()
        for change in changes:
            if self._mine(change.person):
                ledger.settle(change)
                touched.add(change.person)
        touched.update(person for person in ledger.due(through) if self._mine(person))
        for person in sorted(touched):
            own_settled = self.scorer.people.state(person).settled_at
            settled_at = through if own_settled is None else max(through, own_settled)
            _, publish = corrections(person, ledger.showing(person), ledger.settled.get(person, []), settled_at,
                                     self.horizon.publish_from)
            self._send(publish, wall, out, settled_at)
            ledger.reconciled(person, settled_at)

    def _escalate(self, wall: float, out: list[Message]) -> None:
        """Every owned person given a fact or a pending event: a level above what is shown, at once."""
        ledger, through = self.ledger, self.scorer.settled_through
        through = NEVER if through is None else through
        noted = self.scorer.people.noted or {}
        for person, moment in noted.items():
            if self._mine(person):
                self.dirty[person] = min(moment, self.dirty.get(person, moment))
        noted.clear()
        self._announce_cases(out)
        speculative = self._early_cases()
        for person, since in sorted(self.dirty.items()):
            state = self.scorer.people.state(person)
            after = max(through, state.settled_at if state.settled_at is not None else NEVER) + 1
            pending = [event for _, event in self.pending.get(person, ())]
            raised = early_escalations(ledger.showing(person), state, pending, self.tracker.rules_at,
                                       max(since, after, self.horizon.publish_from), speculative.get(person, ()))
            self._send(raised, wall, out, through)
        self.dirty.clear()

    def _announce_cases(self, out: list[Message]) -> None:
        """Owned persons whose pending events make them a case: an early notice to every worker,
        at once (the notice proper follows in event-time order, see `_track_cases`)."""
        for person, waiting in self.pending.items():
            if person not in self.dirty:
                continue
            for notice in self.tracker.peek(person, [event for _, event in waiting]):
                partition = partition_of(person, self.config.partitions)
                message = _notice_message(notice, partition, self.config.reference_secret, kind="early_case")
                if message not in self.early_sent:
                    self.early_sent.add(message)
                    out.append(Message(self.config.topics.cases, None, message))
                    # This worker's own contacts of the case need not wait for the message to come back.
                    self._hear_early(notice_of(orjson.loads(message)))

    def _early_cases(self) -> dict[str, list[Exposure]]:
        """Exposures of owned persons that cases announced early already caused, by person; each
        such person is looked at again (presence may have closed more stays since)."""
        for ref in [ref for ref, notice in self.early_cases.items() if notice.known_at <= self.scored_through]:
            del self.early_cases[ref]
        if self.exposures is not None:
            self.exposures.forget_probes(self.scored_through)
        found: dict[str, list[Exposure]] = {}
        for notice in self.early_cases.values():
            for exposure in self.scorer.probe_case(notice):
                found.setdefault(exposure.person, []).append(exposure)
                moment = exposure.effective_from
                self.dirty[exposure.person] = min(moment, self.dirty.get(exposure.person, moment))
        return found

    def _mine(self, person: str) -> bool:
        return partition_of(person, self.config.partitions) in self.owned

    def _send(self, publish: list[Any], wall: float, out: list[Message], settled_through: int) -> None:
        """Publish changes (or records read back, signed again) in order."""
        if not publish:
            return
        config = self.config
        issued_at = int(wall)
        key = signing_key_at(config.keys, issued_at)
        for item in publish:
            if isinstance(item, PersonChange):
                line = Line(change_key(item), item)
                record = {"type": "code", "timeline_version": TIMELINE_VERSION, **code_record(
                    item, key, issuer=config.issuer, issued_at=issued_at, validity_s=config.code_validity_s,
                    evidence_secret=config.reference_secret,
                )}
            else:
                line = Line(record_key(item), item)
                record = signed(item, key, issuer=config.issuer, issued_at=issued_at, validity_s=config.code_validity_s)
            person = record["person"]
            out.append(Message(config.topics.codes, person.encode(), encode_record(record)))
            self.ledger.published(person, line, settled_through)
            self.view.codes[person] = record
            metrics.CODES_ISSUED.labels(record["level"]).inc()
            if self.arrived_ms:
                metrics.LATENCY.observe(max(0.0, wall - self.arrived_ms / 1000))

    def _announce(self, now: float, wall: float, out: list[Message]) -> bytes | None:
        """Tell everyone (`healthcode rules active`) what this worker runs, every few seconds."""
        if now - self.announced_at < STATUS_EVERY_S:
            return None
        self.announced_at = now
        status = {
            "type": WORKER_STATUS, "worker": self.name, "rule_set": self.view.rule_set,
            "rule_sets": [r.ref for r in self.history], "partitions": sorted(self.owned),
            "watermark": self.view.watermark, "at": int(wall), "web_port": self.config.web_port,
        }
        message = orjson.dumps(status)
        out.append(Message(self.config.topics.cases, None, message))
        return message
