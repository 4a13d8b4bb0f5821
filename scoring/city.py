"""Scoring a whole city from events in event-time order: people, presence and the wiring between.

`CityScorer` joins the person half (`People`) and the presence index: person events
go to people, and a change of someone's case windows goes to presence as a
`CaseNotice`; pings go to presence; the exposures presence finds go back to people,
stamped with the moment they became known. Replay feeds it a sorted file; a stream
worker feeds it the same inputs in the same event-time order.

Determinism whatever the batching: pings enter presence at fixed event-time *ticks*
(every `tick_s`, aligned to the epoch), so the exposure records presence emits, and
the moments they take effect, depend only on the events, never on how they were
grouped on the way in. Level changes are settled up to `tick + max_gap` behind the
last tick: an exposure found at a tick can only have become known that recently.

A tick's records reach people in `known_at` order, whichever phase of the flush found
them. Growth of a kind the rules read only by its moments (an area's, under the default
rules) waits while it only extends the record delivered last (`scoring.runs`): levels,
their moments and reasons are the same, a resident of a designated district costs a
record every six hours rather than one a tick. Presence in this process holds areas'
growth itself, over arrays, as it finds it (`scoring.crowd_runs`): what waits is never built.

Rule sets take effect at their `valid_from` event time. Each distinct contact
definition among them has its own presence index, fed from the start, so a switch to
rules that define contacts differently finds the contacts of the past as the new
rules define them; at the switch every person is settled under the old rules, given
the new index's exposures, and assessed again under the new ones.

A worker that scores only some persons (`owns`) still feeds presence every ping
(contacts cross partitions) but keeps state only for the persons it owns. With
`notices_from_outside`, case windows come only through `case_notice` (a stream
broadcasts them, see `scoring.notices`), not from the person events fed here.

The scorer is a time loop and a people side around a presence side (`Presence`):
`LocalPresence` holds the indexes in this process (replay, and today's worker); a
pipeline split by region runs the same loop in every stage with another presence
side (`scoring.regions`), so every stage makes the same presence calls at the same
event times, and the scoring stage gets, for each call, what one index would have found.
Presence forgets at event-time day boundaries (`EXPIRE_EVERY_S`), whatever the flushes
each stage happened to make, so every stage forgets the same things.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Protocol

import numpy as np

from scoring.areas import RISK_LEVELS, too_many_cells
from scoring.cells import Snapped, taken
from scoring.events import AreaRisk, Ping, TestResult, Visit
from scoring.exposure import AREA, CaseWindow, ContactSpec, Exposure, known_from
from scoring.people import People, PersonChange
from scoring.presence import PresenceIndex, area_resolution
from scoring.pseudonyms import Coded, Persons, joined
from scoring.rules import RuleSet
from scoring.runs import GrowthRuns, held_kinds
from scoring.timeutil import to_epoch

DEFAULT_TICK_S = 15 * 60
EXPIRE_EVERY_S = 24 * 3600


def known_at(exposure: Exposure, source_known: int | None, now: int) -> int:
    """When an exposure record became known, in event time.

    Co-presence is known once it has happened (`last_at`), and not before its source
    became known (a case confirmed, an area designated). A retraction is known when
    it is made (`now`): until then the exposure stood.
    """
    if exposure.retracted:
        return now
    return max(exposure.last_at, source_known if source_known is not None else exposure.last_at)


_delivery_order = attrgetter("known_at", "person", "exposure_id")
"""Records of one moment reach people in this order (whatever order presence found them in)."""


def _stamped(exposure: Exposure, moment: int) -> Exposure:
    # Presence stamps areas' records itself, not cases' (the loop knows when those became known).
    return exposure if exposure.known_at == moment else known_from(exposure, moment)


@dataclass(frozen=True, slots=True)
class CaseNotice:
    """A change of someone's case windows, at the event time it became known."""

    window: CaseWindow
    known_at: int


@dataclass
class CityCounts:
    """What a run found."""

    exposed_pairs: set[str] = field(default_factory=set)
    """Ids of the exposures standing now (found and not retracted)."""
    ticks: int = 0
    """Ticks processed: the unit of work that time passing costs (quiet stretches are jumped)."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(event id, reason) of designations too large to fill at a rule set's resolution, ignored."""


@dataclass(frozen=True)
class IndexPlan:
    """One presence index: a distinct contact definition among the rule sets, and what it keeps."""

    specs: tuple[ContactSpec, ...]
    retention_s: int
    area_levels: tuple[str, ...]
    """The designation levels some rule set of this index counts: presence looks only for those."""
    by_day: bool = True
    """Some rule set of this index weighs minutes by day (a points rule): records carry them."""


def index_plans(history: Sequence[RuleSet]) -> list[IndexPlan]:
    """The indexes a rule history needs, in order of first use (an index is named by its position)."""
    history = sorted(history, key=lambda r: r.valid_from)
    plans: dict[tuple[ContactSpec, ...], IndexPlan] = {}
    for rule_set in history:
        specs = tuple(rule_set.contact_specs())
        if specs in plans:
            continue
        sharing = [r for r in history if tuple(r.contact_specs()) == specs]
        levels = tuple(level for level in RISK_LEVELS if any(r.counts_exposure(AREA, level) for r in sharing))
        by_day = any(r.points_rules for r in sharing)
        plans[specs] = IndexPlan(specs, max(r.retention_s for r in sharing), levels, by_day)
    return list(plans.values())


Found = dict[int, list[Exposure]]
"""Exposures that changed, by index (position in `index_plans`)."""


class Presence(Protocol):
    """What the time loop asks of presence, index by index (see `LocalPresence`)."""

    def add_pings(
        self, persons: Persons, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> None:
        """Pings of one tick (all earlier than the boundary the loop is at), kept until `flush`; `snapped`:
        their cells at some resolutions, if snapped already."""

    def buffered(self) -> bool:
        """Pings are waiting for the next flush (the loop then steps, it does not skip)."""

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        """Take in the pings earlier than `before`, then let time reach `watermark`: what each phase found
        (a tick of the time loop: what an index holding growth delivers, see `hold_growth`)."""

    def hold_growth(self, index: int, kinds: frozenset[str]) -> frozenset[str]:
        """Have `index` (the index in force; the others' records are all returned) hold growth of `kinds`
        as `GrowthRuns` would, where it can: returns the kinds it holds, which the time loop leaves to it.
        It then delivers what falls due at the end of each `flush`, and every record waiting on `release_growth`."""

    def release_growth(self) -> list[Exposure]:
        """Every record of the index in force held here and waiting (the loop settles everything next)."""

    def designate(self, event: AreaRisk, now: int, until: int | None) -> Found:
        """An area designation (one every index can hold, see `too_many_cells`)."""

    def case(self, window: CaseWindow, known_at: int) -> Found:
        """A case window, told at `known_at`."""

    def probe(self, index: int, window: CaseWindow, known_at: int) -> list[Exposure]:
        """What `case` would find at once in `index`, changing nothing (`PresenceIndex.probe`)."""

    def expire(self, day: int) -> None:
        """Forget what no rule looks back to from `day` (a day boundary) any more."""

    def exposures(self, index: int) -> list[Exposure]:
        """The current exposure of every pair `index` holds."""

    def next_change(self) -> int | None:
        """The earliest event time at which a flush could find something (None: none until new input)."""

    @property
    def area_cells_filled(self) -> int:
        """Cells the designations filled, in every index held here."""


class HoldsNoGrowth:
    """A presence side that returns every record it finds, and leaves holding growth to the time loop
    (one that merges records found elsewhere, or scores nobody)."""

    def hold_growth(self, index: int, kinds: frozenset[str]) -> frozenset[str]:
        return frozenset()

    def release_growth(self) -> list[Exposure]:
        return []


PingColumns = tuple[Persons, np.ndarray, np.ndarray, np.ndarray, Snapped | None]
"""Pings as (persons, ts, lat, lon) arrays, and their cells if snapped already."""


class PingBuffer:
    """Pings held until the flush of their tick (`Presence.add_pings`)."""

    def __init__(self) -> None:
        self._pings: list[PingColumns] = []

    def add_pings(
        self, persons: Persons, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> None:
        self._pings.append((persons, ts, lat, lon, snapped))

    def buffered(self) -> bool:
        return bool(self._pings)

    def ready(self, before: int) -> PingColumns | None:
        """The pings earlier than `before`, no longer held (None: there are none)."""
        ready = [part for part in self._pings if len(part[1]) and part[1][0] < before]
        if not ready:
            return None
        self._pings = [part for part in self._pings if not (len(part[1]) and part[1][0] < before)]
        ts, lat, lon = (np.concatenate([part[column] for part in ready]) for column in range(1, 4))
        snaps = [part[4] for part in ready]
        # Snapped only when every part was, at the resolutions all of them were.
        resolutions = set.intersection(*(set(snap) for snap in snaps)) if all(s is not None for s in snaps) else set()
        snapped = {res: np.concatenate([snap[res] for snap in snaps]) for res in resolutions}  # type: ignore[index]
        return joined([part[0] for part in ready]), ts, lat, lon, snapped or None


class LocalPresence(PingBuffer):
    """Every index in this process, fed the pings themselves: replay's presence."""

    def __init__(self, plans: Sequence[IndexPlan]) -> None:
        super().__init__()
        self.indexes = [
            PresenceIndex(p.specs, p.retention_s, area_levels=p.area_levels, by_day=p.by_day) for p in plans
        ]
        self._holding: int | None = None
        """The index holding growth (`hold_growth`)."""

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        pings = self.ready(before)
        ingested = {} if pings is None else \
            {i: index.ingest_batch(*pings, tick=watermark) for i, index in enumerate(self.indexes)}
        advanced = {i: index.advance(watermark, tick=True) for i, index in enumerate(self.indexes)}
        if self._holding is not None:
            advanced[self._holding] += self.indexes[self._holding].refresh_growth(watermark)
        return ingested, advanced

    def hold_growth(self, index: int, kinds: frozenset[str]) -> frozenset[str]:
        # Areas' crowds are held as arrays (`scoring.crowd_runs`): their growth that waits is never built.
        self._holding = index if AREA in kinds and self.indexes[index].hold_growth(True) else None
        for i, other in enumerate(self.indexes):
            if i != self._holding:
                other.hold_growth(False)
        return frozenset() if self._holding is None else frozenset({AREA})

    def release_growth(self) -> list[Exposure]:
        return [] if self._holding is None else self.indexes[self._holding].release_growth()

    def designate(self, event: AreaRisk, now: int, until: int | None) -> Found:
        return {i: index.designate(event.area, event.level, event.geometry, now, until)
                for i, index in enumerate(self.indexes)}

    def case(self, window: CaseWindow, known_at: int) -> Found:
        # The loop stamps `known_at` itself (`known_at()`), from when the case first became known.
        return {i: index.case(window) for i, index in enumerate(self.indexes)}

    def probe(self, index: int, window: CaseWindow, known_at: int) -> list[Exposure]:
        return self.indexes[index].probe(window, known_at)

    def expire(self, day: int) -> None:
        for index in self.indexes:
            index.expire(day)

    def exposures(self, index: int) -> list[Exposure]:
        return self.indexes[index].exposures()

    def next_change(self) -> int | None:
        return min((m for index in self.indexes if (m := index.next_change()) is not None), default=None)

    @property
    def area_cells_filled(self) -> int:
        return sum(index.areas.cells_filled for index in self.indexes)


class CityScorer:
    """Score a city from events fed in event-time order (ties in any order)."""

    def __init__(
        self,
        rules: RuleSet | Sequence[RuleSet],
        *,
        owns: Callable[[str], bool] | None = None,
        notices_from_outside: bool = False,
        tick_s: int = DEFAULT_TICK_S,
        presence: Callable[[list[IndexPlan]], Presence] = LocalPresence,
    ) -> None:
        """`presence` makes the presence side from the indexes the rules need (default: in this process)."""
        history = sorted([rules] if isinstance(rules, RuleSet) else rules, key=lambda r: r.valid_from)
        self.rules = history[0]
        self._upcoming = history[1:]
        self.people = People(self.rules)
        self.plans = index_plans(history)
        self.presence = presence(self.plans)
        self.index = self._index_of(self.rules)
        """The index of the rules in force: only its exposures reach people."""
        self.max_gap = max((spec.max_gap_s for plan in self.plans for spec in plan.specs), default=0)
        self.tick_s = tick_s
        self.owns = owns
        self.notices_from_outside = notices_from_outside
        self.counts = CityCounts()
        self._runs = self._growth_runs()
        """Growth of the index in force's exposures waiting to reach people (`scoring.runs`), but for the
        kinds presence holds itself."""
        self._source_known: dict[str, int] = {}
        self._boundary: int | None = None
        self._latest: int | None = None
        self._expired_at: int | None = None
        self._changes: list[PersonChange] = []
        self.settled_through: int | None = None
        """Every level change up to this event time has been settled (is among `take_changes`)."""

    # -- inputs, in event-time order ------------------------------------------------

    def add_pings(
        self, persons: Persons, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> None:
        """Pings sorted by time (arrays), no earlier than anything fed before; `snapped`: their cells at
        some resolutions, if snapped already (`resolutions` names the ones presence snaps at)."""
        if len(ts) == 0:
            return
        ts = np.asarray(ts, dtype=np.int64)
        persons = persons if isinstance(persons, Coded) else np.asarray(persons, dtype=object)
        start = 0
        while start < len(ts):
            self._reach(int(ts[start]))
            end = int(np.searchsorted(ts, self._boundary, side="left")) if self._boundary is not None else len(ts)
            self.presence.add_pings(persons[start:end], ts[start:end], lat[start:end], lon[start:end],
                                    taken(snapped, slice(start, end)))
            start = end
        # `_reach` saw only the first ping of each tick; `finish` settles up to the last one.
        last = int(ts[-1])
        self._latest = last if self._latest is None else max(self._latest, last)

    def add_event(self, event: Ping | Visit | TestResult | AreaRisk) -> None:
        """One event no earlier than anything fed before."""
        now = to_epoch(event.ts)
        if isinstance(event, Ping):
            self.add_pings(np.array([event.person], dtype=object), np.array([now]),
                           np.array([event.lat]), np.array([event.lon]))
            return
        self._reach(now)
        if isinstance(event, AreaRisk):
            refusal = self._refusal(event)
            if refusal is not None:
                self.counts.refused.append((event.event_id, refusal))
                return
            until = None if event.valid_until is None else to_epoch(event.valid_until)
            for index, found in self.presence.designate(event, now, until).items():
                for exposure in found:
                    self._source_known.setdefault(exposure.source, now)
                self._deliver(index, found, now)
            return
        windows = self.people.apply_event(event)
        if not self.notices_from_outside:
            for window in windows:
                self._case(CaseNotice(window, now))

    def _refusal(self, event: AreaRisk) -> str | None:
        # Checked for every index first, so that no index takes a designation another cannot.
        if event.level not in RISK_LEVELS:
            return None
        problems = (too_many_cells(event.geometry, area_resolution(plan.specs)) for plan in self.plans)
        return next((problem for problem in problems if problem is not None), None)

    def case_notice(self, notice: CaseNotice) -> None:
        """A case notice (see `notices_from_outside`), fed in event-time order at `notice.known_at`."""
        self._reach(notice.known_at)
        self._case(notice)

    def probe_case(self, notice: CaseNotice) -> list[Exposure]:
        """The exposures of owned persons that `case_notice(notice)` would find at once, from the
        stays already closed, under the rules in force; nothing changes (see `PresenceIndex.probe`)."""
        found = self.presence.probe(self.index, notice.window, notice.known_at)
        return [e for e in found if self.owns is None or self.owns(e.person)]

    # -- time -----------------------------------------------------------------------

    def advance_to(self, watermark: int, final: bool = False) -> None:
        """Everything up to `watermark` has been fed: flush the ticks it completes.

        `final` also takes in the pings of the unfinished tick and settles every level
        change up to `watermark` (the end of a file, or a stream with nothing more to read).
        """
        latest = self._latest
        self._reach(watermark + 1)
        self._latest = latest if latest is not None and latest > watermark else watermark
        if final:
            self._flush(watermark + 1, watermark, final=True)
            self._changes += self.people.settle(watermark)
            self._settled(watermark)

    @property
    def resolutions(self) -> list[int]:
        """The resolutions presence snaps pings at (each index's finest): cells snapped ahead at these are used."""
        return sorted({max(spec.resolution for spec in plan.specs) for plan in self.plans})

    @property
    def area_cells_filled(self) -> int:
        """Cells every designation filled so far, in every index: the work areas cost."""
        return self.presence.area_cells_filled

    def take_changes(self) -> list[PersonChange]:
        """The level changes settled since the last call."""
        changes, self._changes = self._changes, []
        return changes

    def finish(self, until: int | None = None) -> list[PersonChange]:
        """Flush and settle up to `until` (default: the last event time fed); all changes not yet taken."""
        end = until if until is not None else self._latest
        if end is not None:
            self.advance_to(end, final=True)
        return self.take_changes()

    def _reach(self, moment: int) -> None:
        self._latest = moment if self._latest is None else max(self._latest, moment)
        if self._boundary is None:
            # A presence side fed from upstream may hold flushes from before the first moment fed here.
            pending = self.presence.next_change()
            start = moment if pending is None else min(moment, pending - 1)
            self._boundary = (start // self.tick_s + 1) * self.tick_s
        while True:
            switch = self._upcoming[0].valid_from if self._upcoming else None
            if switch is not None and switch <= moment and switch < self._boundary:
                self._switch(self._upcoming.pop(0))
            elif moment >= self._boundary:
                self._skip_quiet_ticks(moment if switch is None else min(moment, switch))
                self._flush(self._boundary, self._boundary)
                self._changes += self.people.settle(self._boundary - self.tick_s - self.max_gap - 1)
                self._settled(self._boundary - self.tick_s - self.max_gap - 1)
                self._boundary += self.tick_s
                self.counts.ticks += 1
            else:
                return

    def _skip_quiet_ticks(self, limit: int) -> None:
        """Move the boundary on to the first tick, up to the last one at or before `limit`, that does anything.

        A tick with no pings buffered, no stay to close and nobody due to settle changes
        nothing, so the loop above jumps over such stretches rather than stepping through
        them: its cost follows the events and level changes, not the span of event time
        they cover (one event dated 9999 must not cost 280 million ticks). Presence expiry,
        which ran at each day boundary in the skipped stretch, is done once, at the last
        of them: expiry only ever deletes more with a later cutoff, and nothing arrived in
        between, so the state is what stepping would have left.
        """
        if self.presence.buffered():
            return
        candidates = [limit - limit % self.tick_s]  # the last tick at or before `limit`
        closes = self.presence.next_change()
        if closes is not None:
            candidates.append(self._tick_at_or_after(closes))
        due = self.people.next_due()
        if due is not None:
            candidates.append(self._tick_at_or_after(due + self.tick_s + self.max_gap + 1))
        target = min(candidates)
        if target <= self._boundary:
            return
        # Stepping would have expired at the day of the last tick skipped.
        self._expire(target - self.tick_s)
        self._boundary = target

    def _settled(self, through: int) -> None:
        self.settled_through = through if self.settled_through is None else max(self.settled_through, through)

    def _tick_at_or_after(self, moment: int) -> int:
        return -(-moment // self.tick_s) * self.tick_s

    def _switch(self, rules: RuleSet) -> None:
        """Rules `rules` take effect at their `valid_from` (inside the current tick)."""
        at = rules.valid_from
        self._flush(at, at, final=True)
        self._changes += self.people.settle_all(at - 1)
        self._settled(at - 1)
        self.index = self._index_of(rules)
        current = [
            replace(e, known_at=known_at(e, self._source_known.get(e.source), at))
            for e in self.presence.exposures(self.index)
            if self.owns is None or self.owns(e.person)
        ]
        self.people.replace_exposures(current)
        self.rules = rules
        self._runs = self._growth_runs()
        self._changes += self.people.rescore(rules, at)

    def _growth_runs(self) -> GrowthRuns:
        """Runs of growth for the rules in force: of the kinds presence does not hold as it finds them (a
        worker scoring some persons only, `owns`, filters the records first, and holds them all here)."""
        kinds = held_kinds(self.rules)
        if self.owns is None:
            return GrowthRuns(kinds - self.presence.hold_growth(self.index, kinds))
        self.presence.hold_growth(self.index, frozenset())
        return GrowthRuns(kinds)

    def _index_of(self, rules: RuleSet) -> int:
        specs = tuple(rules.contact_specs())
        return next(i for i, plan in enumerate(self.plans) if plan.specs == specs)

    def _flush(self, before: int, watermark: int, final: bool = False) -> None:
        """Ingest buffered pings earlier than `before`, let presence time reach `watermark`; `final`:
        deliver every record still waiting too (everything is settled next)."""
        ingested, advanced = self.presence.flush(before, watermark)
        # Both phases in one delivery, in `known_at` order: a stay that time passing closed is often
        # known before a record the tick's pings found. Given second, it came late to its person,
        # settled up to that record already (`People.apply_exposure`): a change it made was reported
        # at the settled moment, not its own, after a reassessment (5% of an outbreak city's replay).
        # Indexes of rules not (yet) in force keep their own exposures until a switch.
        found = ingested.get(self.index, []) + advanced.get(self.index, [])
        if self.owns is not None:
            found = [e for e in found if self.owns(e.person)]
        # Every flush tells the runs, records or none: a run this tick did not grow has stopped.
        given = self._runs.tick(found, watermark)
        if final:  # after the tick: what it found may extend what waits
            given += self._runs.release() + self.presence.release_growth()
        self._give(given, watermark)
        self._expire(watermark)

    def _expire(self, moment: int) -> None:
        """Presence past the rules' longest window is deleted: the privacy promise and the memory bound.

        Once an event-time day is enough for both (scanning the tables every tick is not cheap);
        at day boundaries, so that every stage of a split pipeline forgets the same things.
        """
        day = moment - moment % EXPIRE_EVERY_S
        if self._expired_at is None or day > self._expired_at:
            self._expired_at = day
            self.presence.expire(day)

    # -- presence and people ---------------------------------------------------------

    def _case(self, notice: CaseNotice) -> None:
        self._source_known.setdefault(notice.window.case_ref, notice.known_at)
        for index, found in self.presence.case(notice.window, notice.known_at).items():
            self._deliver(index, found, notice.known_at)

    def _deliver(self, index: int, exposures: list[Exposure], now: int) -> None:
        """Records found between ticks (a designation, a case) to people."""
        # Indexes of rules not (yet) in force keep their own exposures until a switch.
        if index != self.index:
            return
        if self.owns is not None:
            exposures = [e for e in exposures if self.owns(e.person)]
        self._give(self._runs.passing(exposures), now)

    def _give(self, exposures: list[Exposure], now: int) -> None:
        """Records of the index in force, of persons owned, to people, in `_delivery_order`."""
        stamped = [_stamped(e, known_at(e, self._source_known.get(e.source), now)) for e in exposures]
        stamped.sort(key=_delivery_order)
        for exposure in stamped:
            if exposure.retracted:
                self.counts.exposed_pairs.discard(exposure.exposure_id)
            else:
                self.counts.exposed_pairs.add(exposure.exposure_id)
            self._changes += self.people.apply_exposure(exposure)
