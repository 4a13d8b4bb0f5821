"""The pipeline in three stages, without Kafka: presence split by region.

- **stays**, per `pings` partition (persons): pings in event-time order through replay's
  time loop (`CityScorer` with `StaysPresence`) into stay changes, sent on `stays` to the
  region partitions they reach (`RegionMap.routes`), many per message;
- **presence**, per `stays` partition (a hash of H3 regions): the stays of every ping
  partition, case notices and designations through the same loop (`RegionPresence`) into
  partial exposures, sent on `exposures` to the person partitions they concern;
- **scoring**, per person partition: `streams.step.Step` with `RemotePresence`, which sums
  the regions' partial exposures call by call.

Every stage runs the same time loop on the same calls, so the scoring stage settles
replay's timeline (`tests/unit/scoring/test_stages.py` for the core). What travels between
stages makes that hold in a stream:
- progress: each message of a stage carries how far (`through`) its sender's loop has
  advanced; a stage advances only as far as every upstream partition has reported, and
  progress is only ever reported, never inferred from an internal topic's end offset
  (the embedded broker under-reports those, see `streams.eventtime.Reports`);
- finals: an idle stream settles its unfinished tick (a flush at the newest event time).
  All stays partitions must make that flush at the same moment, so it is decided once, by
  a rule every reader of `cases` (one partition, one order) evaluates alike (`CityClock`):
  stays partitions report there how far they have read their pings and whether they are
  idle, as person partitions report their visits; when every report says idle, the final
  is at the newest event time reported. Stays partitions do not pass the clock, and carry
  the finals they made downstream with their progress. A stage reading again may read
  `cases` ahead of its pings: a stays partition makes a final once it has read its pings as
  far as its reports said when the final was decided (`CityClock.reads`);
- rebuilds and resumes: every stage rebuilds from offset 0 on assignment, or resumes from a
  snapshot of its state (`streams.resume`), and sends again what it sent after that. A
  call's messages are a function of the inputs, so a receiver keeps, per sender, the
  furthest progress it has received and skips the calls due by then (`due`).

Each stage keeps its state per input partition (`PingPartition`, `RegionPartition`) and no
clients; its clock readings are reset on a resume (`streams.resume.restored_stage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from scoring.city import CaseNotice, CityScorer, index_plans
from scoring.events import AreaRisk, Ping
from scoring.regions import CallKey, RegionMap, RegionPresence, StaysPresence, case_call, region_resolution
from scoring.rules import RuleSet
from scoring.timeutil import to_epoch
from streams import metrics
from streams.deadletter import DEAD_LETTERED, Rejected
from streams.eventtime import NEVER, Reports, TimeOrder, Watermarks
from streams.intake import intake_clock, triage
from streams.letters import LetterLedger
from streams.reading import json_object
from streams.rulebook import history_with, read_rule_set
from streams.step import (
    End, Message, Output, Positions, Record, Source, WorkerConfig, live_floor, notice_of, partition_of,
)
from streams.wire import (
    Malformed, Sent, Upstream, exposure_json, passed_over, read_stays, rule_refs, stays_json,
)


NO_FINAL = 1 << 62
"""`CityClock.through` in live mode: no final will ever be decided, nothing is held back for one."""


def _never(person: str) -> bool:
    return False


# -- the city clock: finals decided once -----------------------------------------------


@dataclass
class Report:
    """A reporter's latest word on `cases`: how far it has read, the newest event time, idle or not."""

    through: int = NEVER
    newest: int = NEVER
    idle: bool = False
    read: int = 0
    """A `pings` partition's: the offset of the next ping its stays stage would read."""


@dataclass
class CityClock:
    """The moments of the final flushes, as every reader of `cases` decides them alike.

    Reporters: every `pings` partition (its stays stage) and every person partition (its
    scoring stage, for visits and designations). A final is made at the newest event time
    reported once every reporter's latest report says idle, at most once per moment.
    `through`: no final can be decided before it (every reporter has read that far), so a
    stage that does not pass it never misses one. In live mode (`live`) there are no
    finals: the wall clock completes ticks, and settling a partial one early would make the
    rest of it late (as the unsplit `Step` does).
    """

    partitions: int
    live: bool = False
    reports: dict[tuple[str, int], Report] = field(default_factory=dict)
    finals: list[int] = field(default_factory=list)
    reads: list[dict[int, int]] = field(default_factory=list)
    """Per final, how far each `pings` partition had read by then (its latest report's `read`):
    a stage reading again (rebuilt, resumed) may read `cases` ahead of its pings, and makes the
    final once it has read its pings as far."""

    def read(self, data: dict[str, Any]) -> None:
        """A message of `cases`: reports count, anything else is passed over."""
        kind, partition = data.get("type"), data.get("partition")
        if kind not in ("pings", "progress") or not isinstance(partition, int):
            return
        through, newest, idle = data.get("through"), data.get("newest", NEVER), data.get("idle", False)
        read = data.get("read", 0)
        if not all(isinstance(v, int) for v in (through, newest, read)) or not isinstance(idle, bool):
            return
        report = self.reports.setdefault((str(kind), partition), Report())
        # A rebuilding reporter reads again from the start: its progress never goes back.
        report.through, report.newest, report.idle = max(report.through, through), max(report.newest, newest), idle
        report.read = max(report.read, read)
        expected = {(kind, p) for kind in ("pings", "progress") for p in range(self.partitions)}
        if not self.live and expected <= self.reports.keys() and all(self.reports[r].idle for r in expected):
            moment = max(self.reports[r].newest for r in expected)
            if moment != NEVER and (not self.finals or moment > self.finals[-1]):
                self.finals.append(moment)
                self.reads.append({p: self.reports[("pings", p)].read for p in range(self.partitions)})

    def newest(self) -> int:
        """The newest event time any reporter has read."""
        return max((report.newest for report in self.reports.values()), default=NEVER)

    def through(self) -> int:
        """No final is decided before this: how far every reporter that is not idle has read (an
        idle one holds nothing back: whatever it reads next, the final waits for it to be idle again)."""
        if self.live:
            return NO_FINAL
        reports = [self.reports.get((kind, p), Report()) for kind in ("pings", "progress") for p in range(self.partitions)]
        busy = [report.through for report in reports if not report.idle]
        passed = min(busy) if busy else max(report.newest for report in reports)
        return max(passed, self.finals[-1] if self.finals else NEVER)


# -- stays ------------------------------------------------------------------------------


@dataclass
class PingPartition:
    """The stays stage's state for one `pings` partition."""

    scorer: CityScorer
    pings: TimeOrder = field(default_factory=TimeOrder)
    """Pings read, as (person, time, lat, lon), until the loop is fed them."""
    through: int = NEVER
    """How far its time loop has advanced (sent downstream as progress)."""
    finals: int = 0
    """How many of the clock's finals it has made."""
    reported: tuple[int, int, bool, int] | None = None
    sent: int = NEVER
    """The progress last sent downstream."""
    truncated: bool = False
    """Retention deleted its oldest pings: this stage read it from past offset 0 (`streams.horizon`)."""
    first: int | None = None
    """Truncated: its first ping kept (event time), told downstream with every message."""


class StaysStep:
    """The stays stage for some `pings` partitions: pings in, stays on `stays` out.

    One `advance` feeds the loops at most about `config.batch_size` pings over all owned
    partitions (a rebuild or resume has read many: on Faust a turn must stay short for
    the group's heartbeats); `Output.more` says pings are ready for the next turn.
    Bounds change only how the stays are batched into messages, not which are sent.
    """

    def __init__(self, config: WorkerConfig, history: list[RuleSet], owned: frozenset[int],
                 dead_lettered: LetterLedger, now: float, starts: Mapping[Source, int] | None = None) -> None:
        self.config, self.history, self.owned = config, history, owned
        self.rules = rule_refs(history)
        plans = index_plans(history)
        self.regions = RegionMap(region_resolution(spec for plan in plans for spec in plan.specs))
        self.clock = CityClock(config.partitions, live=config.live)
        self.dead_lettered = dead_lettered
        self.parts = {p: PingPartition(CityScorer(history, owns=_never, presence=StaysPresence)) for p in owned}
        self.marks = {p: Watermarks(config.lateness_s, config.idle_s) for p in owned}
        for p, marks in self.marks.items():
            marks.track([(config.topics.pings, p)], now)
        self.reports = Reports()
        self.positions = Positions(starts)
        for p, part in self.parts.items():
            # Built to read from the start: a partition starting past offset 0 lost pings to retention
            # (a resumed stage keeps what its snapshot says).
            part.truncated = (self.positions.position((config.topics.pings, p)) or 0) > 0
        self.new_rules = False
        self.pings_processed = 0
        """Valid pings taken (each once per assignment): the presence work this step does."""
        self.named: set[str] = set()
        """Every person a valid ping named: the Faust shell shares the view's set, so the resident
        route knows a resident who only ever pinged (green, not unknown)."""
        self._letters: list[Message] = []

    def take(self, records: Iterable[Record], now: float, wall: float) -> None:
        topics = self.config.topics
        for record in records:
            if record.topic == topics.pings and record.partition not in self.parts:
                continue  # another stage's: its position is not this one's to note (nor snapshot)
            if not self.positions.fresh(record):
                continue
            if record.topic == topics.cases:
                self.clock.read(json_object(record.value))
            elif record.topic == topics.rules:
                published = read_rule_set(record.value or b"")
                self.new_rules |= published is not None and history_with(self.history, published) is not None
            elif record.topic == topics.pings:
                self._take_ping(record, now, wall)

    def _take_ping(self, record: Record, now: float, wall: float) -> None:
        outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                         now=intake_clock(record.timestamp_ms, wall), limits=self.config.limits)
        if isinstance(outcome, Rejected):
            position = (record.topic, record.partition, record.offset)
            if self.dead_lettered.due(position, record.timestamp_ms):
                self._letters.append(Message(self.config.topics.dead_letter, outcome.topic.encode(), outcome.to_bytes()))
                DEAD_LETTERED.labels(outcome.topic, outcome.kind).inc()
            return
        assert isinstance(outcome, Ping)
        ts = to_epoch(outcome.ts)
        metrics.events_in("ping").inc()
        self.pings_processed += 1
        self.named.add(outcome.person)
        self.marks[record.partition].saw((record.topic, record.partition), ts, now)
        part = self.parts[record.partition]
        if ts <= part.through:
            # Its partition's loop has passed it: taken at the next moment, not where replay puts it.
            metrics.LATE_EVENTS.inc()
        if part.truncated and part.first is None:
            part.first = ts
        # Held as plain values, not the event: a snapshot pickles every ping held (65k held: 2.7 MB in
        # 45 ms, against 13 MB in 1-3 s as events).
        part.pings.push(ts, (outcome.person, ts, outcome.lat, outcome.lon))

    def advance(self, now: float, wall: float, ends: Mapping[Source, End], read_ms: float) -> Output:
        """Report how far each partition has read, run each loop as far as the clock and the bound
        allow, send its stays."""
        topics = self.config.topics
        out, self._letters = list(self._letters), []
        self.reports.saw(read_ms, self._newest())
        limit = max(1, self.config.batch_size // max(1, len(self.parts)))
        floor = live_floor(self.config, wall)
        more = False
        for p in sorted(self.parts):
            source = (topics.pings, p)
            end = ends.get(source)
            if end is not None:
                position = self.positions.position(source)
                done = end.highwater is not None and position is not None and position >= end.highwater
                self.marks[p].caught_up(source, self.reports.vouched(source, end.answered_ms) if done else None)
            self._report(p, now, floor, out)
            more |= self._run(p, now, floor, limit, out)
        return Output(out, more=more)

    def _report(self, p: int, now: float, floor: int, out: list[Message]) -> None:
        marks, part = self.marks[p], self.parts[p]
        report = (marks.aligned(now, newest=self._newest(), floor=floor), marks.newest(), marks.idle(now), self._read(p))
        if report != part.reported:
            part.reported = report
            through, newest, idle, read = report
            out.append(Message(self.config.topics.cases, None, orjson.dumps(
                {"type": "pings", "partition": p, "through": through, "newest": newest, "idle": idle, "read": read})))

    def _newest(self) -> int:
        """The newest event time of the stream this stage knows of: its own pings', and what every
        reporter on `cases` has read (a caught-up partition with no pings of its own, or only old ones,
        counts from it, as in the unsplit step, which reads every ping)."""
        return max(max((m.newest() for m in self.marks.values()), default=NEVER), self.clock.newest())

    def _read(self, p: int) -> int:
        return self.positions.position((self.config.topics.pings, p)) or 0

    def _stops(self, p: int, now: float, floor: int) -> list[tuple[int, bool]]:
        """Where partition `p`'s loop is to go, in order: (moment, final)."""
        part = self.parts[p]
        clock = self.marks[p].clocks[(self.config.topics.pings, p)]
        if part.truncated and part.first is None and clock.vouched is None:
            # Its progress must carry the first ping kept before it passes anything (`streams.horizon`):
            # a final the clock decided when more of the partition was kept is not made before then.
            return []
        target = min(self.marks[p].aligned(now, newest=self._newest(), floor=floor), self.clock.through())
        stops = []
        for k in range(part.finals, len(self.clock.finals)):
            final = self.clock.finals[k]
            # Never past a final not made: the loop makes it later, at its moment.
            target = min(target, final)
            if self._read(p) < self.clock.reads[k][p]:
                break
            stops.append((final, True))
        return stops + [(target, False)]

    def _run(self, p: int, now: float, floor: int, limit: int, out: list[Message]) -> bool:
        """Partition `p`'s loop on to its stops, feeding at most about `limit` pings; True when
        the bound left some for the next turn."""
        part = self.parts[p]
        made: list[int] = []
        more = False
        for moment, final in self._stops(p, now, floor):
            if not final and moment <= part.through:
                continue
            if limit <= 0:
                more = True
                break
            released, reached = part.pings.release(moment, limit=limit)
            limit -= len(released)
            self._feed(part, [ping for _, ping in released])
            if reached < moment:
                more = True
                if reached > part.through:
                    part.scorer.advance_to(reached)
                    part.through = reached
                break
            part.scorer.advance_to(moment, final=final)
            part.through = max(part.through, moment)
            if final:
                part.finals += 1
                made.append(moment)
        presence = part.scorer.presence
        assert isinstance(presence, StaysPresence)
        routed: dict[int, list[list[Any]]] = {}
        for call, index, changes in presence.take():
            by_partition: dict[int, list[dict[str, Any]]] = {}
            for change in changes:
                for q, piece in change.by_partition(self.regions, self.config.partitions).items():
                    by_partition.setdefault(q, []).append(stays_json(piece))
            for q, pieces in by_partition.items():
                routed.setdefault(q, []).append([list(call), index, pieces])
        if part.through == part.sent and not routed and not made:
            return more
        part.sent = part.through
        # Every region partition hears of the progress, with or without stays of its own.
        for q in range(self.config.partitions):
            message = {"from": p, "rules": self.rules, "calls": routed.get(q, []), "through": part.through,
                       "finals": made, "first": part.first}
            out.append(Message(self.config.topics.stays, None, orjson.dumps(message), partition=q))
        return more

    def _feed(self, part: PingPartition, pings: list[tuple[str, int, float, float]]) -> None:
        """Pings (person, time, lat, lon) in time order into the partition's loop."""
        if not pings:
            return
        persons, moments, lats, lons = zip(*pings)
        part.scorer.add_pings(np.array(persons, dtype=object), np.array(moments, dtype=np.int64),
                              np.array(lats), np.array(lons))

    def position(self, source: Source) -> int | None:
        return self.positions.position(source)


# -- presence by region -----------------------------------------------------------------


@dataclass
class RegionPartition:
    """The presence stage's state for one region partition."""

    scorer: CityScorer
    presence: RegionPresence
    upstream: dict[int, Upstream]
    inputs: TimeOrder = field(default_factory=TimeOrder)
    """Case notices and designations, until the loop reaches them."""
    through: int = NEVER
    finals: list[int] = field(default_factory=list)
    sent: int = NEVER
    """The progress last sent downstream."""
    probed: dict[tuple[CallKey, int, int], list[dict[str, Any]]] = field(default_factory=dict)
    """The last answer sent to each early case, by (call, index, person partition)."""
    received: int = 0
    """Calls taken from upstream: what a probe finds changes only with these, the loop and the cases asked."""
    probed_for: tuple[Any, ...] | None = None
    """What the last answers were found from (`received`, `through`, the early cases asked)."""
    first: int | None = None
    """The latest first ping kept among the truncated `pings` partitions heard from (`streams.horizon`)."""


class RegionStep:
    """The presence stage for some region partitions: stays, cases and designations in,
    partial exposures on `exposures` out (one message per person partition per turn)."""

    def __init__(self, config: WorkerConfig, history: list[RuleSet], owned: frozenset[int], now: float,
                 starts: Mapping[Source, int] | None = None) -> None:
        self.config, self.history, self.owned = config, history, owned
        self.rules = rule_refs(history)
        self.plans = index_plans(history)
        self.specs = {spec.kind: spec for plan in self.plans for spec in plan.specs}
        regions = RegionMap(region_resolution(spec for plan in self.plans for spec in plan.specs))
        self.parts: dict[int, RegionPartition] = {}
        for r in owned:
            presence = RegionPresence(self.plans, regions.partition_owner(r, config.partitions))
            scorer = CityScorer(history, owns=_never, notices_from_outside=True,
                                presence=lambda plans, presence=presence: presence)
            self.parts[r] = RegionPartition(scorer, presence, {p: Upstream() for p in range(config.partitions)})
        topics = config.topics
        # Designations and case progress, as the scoring stage tracks them (`Step`).
        self.marks = Watermarks(config.lateness_s, config.idle_s)
        self.marks.track([(topics.areas, 0)], now)
        self.marks.track([(topics.cases, q) for q in range(config.partitions)], now, may_idle=False)
        self.reports = Reports()
        self.positions = Positions(starts)
        self.notices_seen: set[bytes] = set()
        self.early: dict[str, CaseNotice] = {}
        """Cases announced early (`early_case`), by reference, that the loops have not reached yet."""
        self.new_rules = False

    def position(self, source: Source) -> int | None:
        return self.positions.position(source)

    def take(self, records: Iterable[Record], now: float, wall: float) -> None:
        topics = self.config.topics
        for record in records:
            if not self.positions.fresh(record):
                continue
            if record.topic == topics.stays and record.partition in self.parts:
                try:
                    self._take_stays(self.parts[record.partition], read_stays(record.value, self.specs))
                except Malformed as error:
                    passed_over(record.topic, record.partition, record.offset, error)
            elif record.topic == topics.cases:
                self._take_case(record.value, now)
            elif record.topic == topics.areas:
                outcome = triage(record.value, record.topic, record.partition, record.offset, record.key,
                                 now=intake_clock(record.timestamp_ms, wall), limits=self.config.limits)
                if isinstance(outcome, AreaRisk):  # rejected ones are the scoring stage's to dead-letter
                    ts = to_epoch(outcome.ts)
                    self.marks.saw((topics.areas, 0), ts, now)
                    for part in self.parts.values():
                        part.inputs.push(ts, outcome)
            elif record.topic == topics.rules:
                published = read_rule_set(record.value or b"")
                self.new_rules |= published is not None and history_with(self.history, published) is not None

    def _take_stays(self, part: RegionPartition, sent: Sent) -> None:
        if sent.origin not in part.upstream:
            raise Malformed(f"from {sent.origin}, no ping partition")
        if sent.rules != self.rules:
            return  # made under another rule-set history (`rule_refs`)
        upstream = part.upstream[sent.origin]
        for call, index, changes in sent.calls:
            if upstream.fresh(call):
                part.presence.receive(call, index, changes)
                part.received += 1
        upstream.finals.update(sent.finals)
        upstream.through = max(upstream.through, sent.through)
        if sent.first is not None:
            part.first = max(sent.first, part.first if part.first is not None else sent.first)

    def _take_case(self, value: bytes | None, now: float) -> None:
        data = json_object(value)
        kind, partition = data.get("type"), data.get("partition")
        if kind == "progress" and isinstance(partition, int) and isinstance(data.get("through"), int) \
                and 0 <= partition < self.config.partitions:  # as the scoring step: no partition waited for forever
            self.marks.progress((self.config.topics.cases, partition), data["through"], now)
        elif kind == "early_case":
            notice = notice_of(data)
            if notice is not None:
                self.early[notice.window.case_ref] = notice
        elif kind == "case" and value not in self.notices_seen:
            notice = notice_of(data)
            if notice is not None:
                self.notices_seen.add(value or b"")
                for part in self.parts.values():
                    part.inputs.push(notice.known_at, notice)

    def advance(self, now: float, wall: float, ends: Mapping[Source, End], read_ms: float) -> Output:
        topics = self.config.topics
        self.reports.saw(read_ms, self.marks.newest())
        end = ends.get((topics.areas, 0))
        if end is not None:
            position = self.positions.position((topics.areas, 0))
            done = end.highwater is not None and position is not None and position >= end.highwater
            self.marks.caught_up((topics.areas, 0), self.reports.vouched((topics.areas, 0), end.answered_ms)
                                 if done else None)
        out: list[Message] = []
        for r in sorted(self.parts):
            self._run(r, self.parts[r], now, live_floor(self.config, wall), out)
        return Output(out)

    def _run(self, r: int, part: RegionPartition, now: float, floor: int, out: list[Message]) -> None:
        stays = min(upstream.through for upstream in part.upstream.values())
        target = min(stays, self.marks.aligned(now, floor=floor))
        agreed = set.intersection(*(upstream.finals for upstream in part.upstream.values()))
        made: list[int] = []
        for final in sorted(moment for moment in agreed if moment not in part.finals and moment <= stays):
            self._feed(part, final)
            part.scorer.advance_to(final, final=True)
            part.finals.append(final)
            part.through = max(part.through, final)
            made.append(final)
        if target > part.through:
            self._feed(part, target)
            part.scorer.advance_to(target)
            part.through = target
        probes = self._probe(part)
        partials, forgotten = part.presence.take()
        routed: dict[int, list[list[Any]]] = {}
        for call, index, exposures in partials:
            by_person: dict[int, list[dict[str, Any]]] = {}
            for exposure in exposures:
                by_person.setdefault(partition_of(exposure.person, self.config.partitions), []).append(
                    exposure_json(exposure))
            for q, found in by_person.items():
                routed.setdefault(q, []).append([list(call), index, found])
        if part.through == part.sent and not routed and not made and not forgotten and not probes:
            return
        part.sent = part.through
        lost = [[day, index, [list(source) for source in sources]] for day, index, sources in forgotten]
        for q in range(self.config.partitions):
            message = {"from": r, "rules": self.rules, "calls": routed.get(q, []), "forgotten": lost,
                       "through": part.through, "finals": made, "probes": probes.get(q, []), "first": part.first}
            out.append(Message(self.config.topics.exposures, None, orjson.dumps(message), partition=q))

    def _probe(self, part: RegionPartition) -> dict[int, list[list[Any]]]:
        """What each early case the loop has not reached finds at once in this partition's cells
        (`PresenceIndex.probe`), by person partition, where it differs from the answer last sent."""
        for ref in [ref for ref, notice in self.early.items()
                    if all(notice.known_at <= p.through for p in self.parts.values())]:
            del self.early[ref]
        found_from = (part.received, part.through, sorted((ref, notice.known_at) for ref, notice in self.early.items()))
        if found_from == part.probed_for:
            # Nothing the answers depend on changed since they were sent: asking again costs every
            # early case's probe, every turn, for nothing (35% of a worker on a 3%-infected city).
            return {}
        part.probed_for = found_from
        answers: dict[tuple[CallKey, int, int], list[dict[str, Any]]] = {}
        for notice in self.early.values():
            if notice.known_at <= part.through:
                continue
            call = case_call("probe", notice.window, notice.known_at)
            for index in range(len(self.plans)):
                for exposure in part.presence.probe(index, notice.window, notice.known_at):
                    q = partition_of(exposure.person, self.config.partitions)
                    answers.setdefault((call, index, q), []).append(exposure_json(exposure))
        asked = {case_call("probe", notice.window, notice.known_at) for notice in self.early.values()}
        changed: dict[int, list[list[Any]]] = {}
        for key in sorted(set(answers) | {key for key in part.probed if key[0] in asked}, key=repr):
            found = answers.get(key, [])
            if part.probed.get(key, []) != found:
                call, index, q = key
                changed.setdefault(q, []).append([list(call), index, found])
        part.probed = answers
        return changed

    def _feed(self, part: RegionPartition, through: int) -> None:
        released, _ = part.inputs.release(through)
        for _, item in released:
            if isinstance(item, CaseNotice):
                part.scorer.case_notice(item)
            else:
                part.scorer.add_event(item)
