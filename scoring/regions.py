"""Regions: the coarse H3 cells that presence work is partitioned by.

A region is the H3 ancestor of a stay's cell at `RegionMap.resolution`, derived with
the same bit arithmetic as every coarser cell of a ping (`scoring.cells.parent`), so a
ping's cells of every contact kind lie in one region, and cells nest in regions
exactly. A partition of presence owns some regions and counts co-presence only in
their cells (`ContactEngine(owns=...)`); co-presence is counted in the cell of the
person's stay, and a person is in one cell at a time, so the partitions' tallies of a
pair add up to the whole city's.

A contact never spans two regions when its kind counts only the same cell: that cell
has one region. When a kind counts the ring-1 neighbours too, a case's stay next door
is presence in a cell of the neighbouring region; such a stay (one whose ring-1 disc
leaves its region) goes to every region its disc touches (`RegionMap.routes`).

The resolution follows from the rules: `STEPS` resolutions coarser than the coarsest
contact cell (49 such cells per region: more regions than a worker count needs, so
hashing them spreads the city), one step more when some kind counts neighbours (343
cells per region: the band of cells a ring-1 contact reaches across a border stays
near a fifth of the cells).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from scoring.cells import Snapped, discs, parent, snap_all, taken
from scoring.celltable import Rows
from scoring.city import Found, HoldsNoGrowth, IndexPlan, PingBuffer
from scoring.events import AreaRisk
from scoring.exposure import CaseWindow, ContactSpec, Exposure
from scoring.presence import PresenceIndex, StayRows
from scoring.pseudonyms import Numbering, Persons
from scoring.stays import StayStage

STEPS = 2
"""Resolutions between the coarsest contact cell and a region (each step: 7 times the area)."""


def region_resolution(specs: Iterable[ContactSpec]) -> int:
    """The region resolution for every contact spec of every rule set in force at some time."""
    specs = list(specs)
    if not specs:
        raise ValueError("regions need at least one contact spec")
    coarsest = min(spec.resolution for spec in specs)
    steps = STEPS + (1 if any(spec.include_neighbours for spec in specs) else 0)
    return max(0, coarsest - steps)


class RegionMap:
    """Which region a cell is in, and which regions a stay must reach."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution

    def region_of(self, cells: np.ndarray) -> np.ndarray:
        """The region (an H3 cell, int64) of each cell, at an equal or finer resolution."""
        return parent(np.asarray(cells, dtype=np.int64), self.resolution)

    def routes(self, cells: np.ndarray, neighbours: bool) -> tuple[np.ndarray, np.ndarray]:
        """(row, region) pairs: every region that must see a stay in each of `cells`.

        Its own region; with `neighbours`, also the regions of its ring-1 disc (a case
        there is present in their cells, a person there meets a case in them).
        """
        cells = np.asarray(cells, dtype=np.int64)
        rows = np.arange(len(cells))
        own = self.region_of(cells)
        if not neighbours or len(cells) == 0:
            return rows, own
        which, around = discs(cells)
        pairs = np.unique(np.stack([which, self.region_of(around)]), axis=1)
        return pairs[0], pairs[1]

    def owner(self, owned: Iterable[int]) -> Callable[[np.ndarray], np.ndarray]:
        """The `owns` test of a partition holding regions `owned`: which cells it counts in."""
        return RegionCells(self, np.array(sorted(set(owned)), dtype=np.int64))

    def partition_of(self, regions: np.ndarray, partitions: int) -> np.ndarray:
        """The region partition (of `partitions`) each region belongs to: a hash of the region.

        H3 cells of one resolution differ in few bits (the unused digits are all ones), so
        the cell number is mixed (a 64-bit multiplicative hash) before taking the remainder.
        """
        mixed = np.asarray(regions, dtype=np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return ((mixed >> np.uint64(33)) % np.uint64(partitions)).astype(np.int64)

    def partition_owner(self, partition: int, partitions: int) -> Callable[[np.ndarray], np.ndarray]:
        """The `owns` test of region partition `partition`: the cells of its regions."""
        return PartitionCells(self, partition, partitions)


# The `owns` tests are objects, not closures: a partition's state pickles (for snapshots).


@dataclass(frozen=True)
class RegionCells:
    """Cells in some regions."""

    regions: RegionMap
    owned: np.ndarray

    def __call__(self, cells: np.ndarray) -> np.ndarray:
        return np.isin(self.regions.region_of(cells), self.owned)


@dataclass(frozen=True)
class PartitionCells:
    """Cells whose region hashes to one region partition (`RegionMap.partition_of`)."""

    regions: RegionMap
    partition: int
    partitions: int

    def __call__(self, cells: np.ndarray) -> np.ndarray:
        return self.regions.partition_of(self.regions.region_of(cells), self.partitions) == self.partition


class StayPartition:
    """The person-keyed half of presence for the persons of some ping partitions: pings in,
    stay changes out, per contact kind, named by pseudonym (`PresenceIndex.apply_stays`).

    A person's stays depend on all their pings (a stay lasts until the next one), and all
    of a person's pings are in one partition: so this stage is exact, and the regions'
    indexes downstream need only the stays in and around their cells.
    """

    def __init__(self, specs: Iterable[ContactSpec]) -> None:
        self.specs = tuple(specs)
        self._stages = [StayStage(spec.max_gap_s) for spec in self.specs]
        self._persons = Numbering()

    def ingest(
        self, persons: Persons, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> list[StayChange]:
        """A batch of pings, any order (`snapped`: their cells, if snapped already): the stays they close,
        add or withdraw, per kind."""
        if len(persons) == 0:
            return []
        numbers = self._persons.numbers(persons)
        ts = np.asarray(ts, dtype=np.int64)
        order = np.lexsort((ts, numbers))
        cells = snap_all(np.asarray(lat, dtype=np.float64)[order], np.asarray(lon, dtype=np.float64)[order],
                         [spec.resolution for spec in self.specs], taken(snapped, order))
        return [self._named(spec, *stage.ingest(numbers[order], ts[order], cells[spec.resolution]))
                for spec, stage in zip(self.specs, self._stages)]

    def advance(self, watermark: int) -> list[StayChange]:
        """Event time reached `watermark`: last stays whose cap it passed, now closed, per kind."""
        return [self._named(spec, stage.advance(watermark), Rows.empty()) for spec, stage in zip(self.specs, self._stages)]

    def expire(self, watermark: int, retention_s: int) -> None:
        """Forget stays no kind looks back to any more (see `PresenceIndex.expire`)."""
        for spec, stage in zip(self.specs, self._stages):
            stage.expire(watermark - min(spec.lookback_s, retention_s))

    def next_change(self) -> int | None:
        """The earliest watermark at which `advance` closes a stay (None: none is open)."""
        return min((m for stage in self._stages if (m := stage.tracker.next_cap()) is not None), default=None)

    def _named(self, spec: ContactSpec, added: Rows, withdrawn: Rows) -> StayChange:
        return StayChange(spec, self._stays(added), self._stays(withdrawn))

    def _stays(self, rows: Rows) -> StayRows:
        persons = np.array([self._persons.names[n] for n in rows.owner.tolist()], dtype=object)
        return persons, rows.cell, rows.start, rows.end


@dataclass(frozen=True)
class StayChange:
    """What one batch changed in the stays of one contact kind."""

    spec: ContactSpec
    added: StayRows
    withdrawn: StayRows

    def for_region(self, regions: RegionMap, region: int) -> "StayChange":
        """The part a partition holding `region` must see (`RegionMap.routes`)."""
        return StayChange(self.spec, _routed(self.added, regions, region, self.spec.include_neighbours),
                          _routed(self.withdrawn, regions, region, self.spec.include_neighbours))

    def regions(self, regions: RegionMap) -> set[int]:
        """Every region some stay of this change reaches."""
        found: set[int] = set()
        for stays in (self.added, self.withdrawn):
            found.update(regions.routes(stays[1], self.spec.include_neighbours)[1].tolist())
        return found

    def __len__(self) -> int:
        return len(self.added[0]) + len(self.withdrawn[0])

    def by_partition(self, regions: RegionMap, partitions: int) -> dict[int, "StayChange"]:
        """The part each region partition must see (`RegionMap.routes`), for the partitions some stay reaches."""
        routed: dict[int, list[np.ndarray]] = {}
        for column, stays in enumerate((self.added, self.withdrawn)):
            rows, reached = regions.routes(stays[1], self.spec.include_neighbours)
            pairs = np.unique(np.stack([regions.partition_of(reached, partitions), rows]), axis=1)
            for partition in np.unique(pairs[0]).tolist():
                routed.setdefault(partition, [np.empty(0, dtype=np.int64)] * 2)[column] = pairs[1][pairs[0] == partition]
        return {partition: StayChange(self.spec, _rows(self.added, keep[0]), _rows(self.withdrawn, keep[1]))
                for partition, keep in sorted(routed.items())}


def _routed(stays: StayRows, regions: RegionMap, region: int, neighbours: bool) -> StayRows:
    rows, reached = regions.routes(stays[1], neighbours)
    return _rows(stays, np.unique(rows[reached == region]))


def _rows(stays: StayRows, keep: np.ndarray) -> StayRows:
    return stays[0][keep], stays[1][keep], stays[2][keep], stays[3][keep]


class ExposureMerge:
    """The scoring stage's view of presence: each region's partial exposures, summed.

    A region counts a pair's co-presence in its own cells only; the partials of one
    pair are disjoint in time (a person is in one cell at a time), so their seconds,
    seconds by day, first and last contact combine into the record one index for the
    whole city would hold. Minutes travel as whole seconds / 60, so the sum is exact.
    """

    def __init__(self) -> None:
        self._parts: dict[str, dict[int, Exposure]] = {}
        self._merged: dict[str, Exposure] = {}

    def current(self) -> list[Exposure]:
        """The merged exposure of every pair held (`PresenceIndex.exposures`)."""
        return sorted(self._merged.values(), key=lambda e: (e.source, e.kind, e.person))

    def forget(self, sources: set[tuple[str, str]]) -> None:
        """Sources (kind, ref) the regions forgot at expiry: their exposures are final, no longer held."""
        if not sources:
            return
        for exposure_id in [i for i, e in self._merged.items() if (e.kind, e.source) in sources]:
            del self._merged[exposure_id]
            self._parts.pop(exposure_id, None)

    def apply(self, partials: Iterable[tuple[int, Exposure]]) -> list[Exposure]:
        """(region, partial exposure) of one moment -> the merged records that changed, one per pair."""
        touched: dict[str, None] = {}
        for region, exposure in partials:
            parts = self._parts.setdefault(exposure.exposure_id, {})
            if exposure.retracted:
                parts.pop(region, None)
            else:
                parts[region] = exposure
            touched[exposure.exposure_id] = None
        out = []
        for exposure_id in touched:
            parts = self._parts.get(exposure_id, {})
            previous = self._merged.get(exposure_id)
            if not parts:
                self._parts.pop(exposure_id, None)
                if previous is not None:
                    del self._merged[exposure_id]
                    out.append(replace(previous, retracted=True))
                continue
            merged = _sum(sorted(parts.items()))
            if merged != previous:
                self._merged[exposure_id] = merged
                out.append(merged)
        return out


def _seconds(minutes: float) -> int:
    return round(minutes * 60)


def _sum(parts: list[tuple[int, Exposure]]) -> Exposure:
    exposures = [exposure for _, exposure in parts]
    first = exposures[0]
    if len(exposures) == 1:
        return first
    by_day: dict[int, int] = {}
    for exposure in exposures:
        for day, minutes in exposure.minutes_by_day:
            by_day[day] = by_day.get(day, 0) + _seconds(minutes)
    # Each part's known_at is the later of the source's and its own last contact: the latest is the whole's.
    known = [e.known_at for e in exposures]
    return replace(
        first,
        first_at=min(e.first_at for e in exposures),
        last_at=max(e.last_at for e in exposures),
        minutes=sum(_seconds(e.minutes) for e in exposures) / 60,
        minutes_by_day=tuple((day, by_day[day] / 60) for day in sorted(by_day)),
        known_at=None if any(k is None for k in known) else max(k for k in known if k is not None),
    )


# -- the three stages' presence sides (see `scoring.city.Presence`) ------------------------

CallKey = tuple[object, ...]
"""Names one presence call of the time loop, the same in every stage: ("ingest" | "advance",
before, watermark) for the two phases of a flush, ("area", now, event id), ("case", known_at,
window...), ("probe", known_at, window...), ("expire", day)."""


def flush_calls(before: int, watermark: int) -> tuple[CallKey, CallKey]:
    """The keys of a flush's two phases."""
    return ("ingest", before, watermark), ("advance", before, watermark)


def case_call(kind: str, window: CaseWindow, known_at: int) -> CallKey:
    return (kind, known_at, window.case_ref, window.person, window.infectious_from, window.infectious_until,
            window.retracted)


def area_call(event: AreaRisk, now: int) -> CallKey:
    return ("area", now, event.event_id)


class StaysPresence(HoldsNoGrowth, PingBuffer):
    """The stays stage's presence side: the pings of some ping partitions in, stay changes out.

    Run by the same time loop as replay (`CityScorer`), it turns each flush's pings into
    stay changes (`StayPartition`), keyed by the flush's calls, to be sent to the region
    partitions (`take`). It holds no cases or designations: those go to the regions.
    """

    def __init__(self, plans: Sequence[IndexPlan]) -> None:
        super().__init__()
        self.plans = list(plans)
        self.partitions = [StayPartition(plan.specs) for plan in self.plans]
        self._outbox: list[tuple[CallKey, int, list[StayChange]]] = []

    def take(self) -> list[tuple[CallKey, int, list[StayChange]]]:
        """The stay changes of the flushes since the last call: (call, index, changes by kind)."""
        out, self._outbox = self._outbox, []
        return out

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        ingest, advance = flush_calls(before, watermark)
        pings = self.ready(before)
        for index, stays in enumerate(self.partitions):
            if pings is not None:
                self._keep(ingest, index, stays.ingest(*pings))
            self._keep(advance, index, stays.advance(watermark))
        return {}, {}

    def _keep(self, call: CallKey, index: int, changes: list[StayChange]) -> None:
        changes = [change for change in changes if len(change)]
        if changes:
            self._outbox.append((call, index, changes))

    def designate(self, event: AreaRisk, now: int, until: int | None) -> Found:
        return {}  # designations are the regions' (no exposure is found here)

    def case(self, window: CaseWindow, known_at: int) -> Found:
        return {}  # cases are the regions'

    def probe(self, index: int, window: CaseWindow, known_at: int) -> list[Exposure]:
        return []

    def expire(self, day: int) -> None:
        for plan, stays in zip(self.plans, self.partitions):
            stays.expire(day, plan.retention_s)

    def exposures(self, index: int) -> list[Exposure]:
        return []

    def next_change(self) -> int | None:
        return min((m for stays in self.partitions if (m := stays.next_change()) is not None), default=None)

    @property
    def area_cells_filled(self) -> int:
        return 0


class RegionPresence(HoldsNoGrowth):
    """A region partition's presence side: stays from every ping partition, cases and
    designations in; partial exposures (this partition's cells only) out, keyed by call.

    Run by the same time loop as replay, fed the case notices and designations in event-time
    order and advanced only as far as every ping partition's stays have arrived: each flush
    then takes the stays sent for it (`receive`), and `next_change` makes the loop stop at
    every flush some ping partition made.
    """

    def __init__(self, plans: Sequence[IndexPlan], owns: Callable[[np.ndarray], np.ndarray]) -> None:
        self.indexes = [
            PresenceIndex(p.specs, p.retention_s, area_levels=p.area_levels, by_day=p.by_day, owns=owns)
            for p in plans
        ]
        self._stays: dict[CallKey, dict[int, list[StayChange]]] = {}
        self._outbox: list[tuple[CallKey, int, list[Exposure]]] = []
        self._forgotten: list[tuple[int, int, list[tuple[str, str]]]] = []

    def receive(self, call: CallKey, index: int, changes: Iterable[StayChange]) -> None:
        """Stays a ping partition sent for flush phase `call` (the ping partitions' in any order)."""
        self._stays.setdefault(call, {}).setdefault(index, []).extend(changes)

    def pending(self) -> list[CallKey]:
        """Flushes stays were sent for that the loop has not made (none once it has passed them all)."""
        return sorted(self._stays, key=repr)

    def take(self) -> tuple[list[tuple[CallKey, int, list[Exposure]]], list[tuple[int, int, list[tuple[str, str]]]]]:
        """The partial exposures found since the last call, (call, index, exposures), and the
        sources forgotten, (day, index, (kind, ref)...)."""
        out, forgotten = self._outbox, self._forgotten
        self._outbox, self._forgotten = [], []
        return out, forgotten

    def add_pings(
        self, persons: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> None:
        raise ValueError("a region partition gets stays, not pings")

    def buffered(self) -> bool:
        return False

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        return tuple(self._apply(call) for call in flush_calls(before, watermark))  # type: ignore[return-value]

    def _apply(self, call: CallKey) -> Found:
        found: Found = {}
        for index, changes in sorted(self._stays.pop(call, {}).items()):
            exposures: list[Exposure] = []
            for kind in dict.fromkeys(change.spec.kind for change in changes):
                mine = [change for change in changes if change.spec.kind == kind]
                exposures += self.indexes[index].apply_stays(
                    kind, _joined([c.added for c in mine]), _joined([c.withdrawn for c in mine]))
            found[index] = exposures
        return self._sent(call, found)

    def _sent(self, call: CallKey, found: Found) -> Found:
        for index, exposures in found.items():
            if exposures:
                self._outbox.append((call, index, exposures))
        return found

    def designate(self, event: AreaRisk, now: int, until: int | None) -> Found:
        return self._sent(area_call(event, now), {
            i: index.designate(event.area, event.level, event.geometry, now, until)
            for i, index in enumerate(self.indexes)})

    def case(self, window: CaseWindow, known_at: int) -> Found:
        return self._sent(case_call("case", window, known_at),
                          {i: index.case(window) for i, index in enumerate(self.indexes)})

    def probe(self, index: int, window: CaseWindow, known_at: int) -> list[Exposure]:
        return self.indexes[index].probe(window, known_at)

    def expire(self, day: int) -> None:
        for i, index in enumerate(self.indexes):
            forgotten = index.expire(day)
            if forgotten:
                self._forgotten.append((day, i, forgotten))

    def exposures(self, index: int) -> list[Exposure]:
        return self.indexes[index].exposures()

    def next_change(self) -> int | None:
        return min((int(call[2]) for call in self._stays), default=None)  # type: ignore[call-overload]

    @property
    def area_cells_filled(self) -> int:
        return sum(index.areas.cells_filled for index in self.indexes)


def _joined(parts: list[StayRows]) -> StayRows:
    if len(parts) == 1:
        return parts[0]
    persons, cells, starts, ends = (np.concatenate([part[column] for part in parts]) for column in range(4))
    return persons, cells, starts, ends


class RemotePresence(HoldsNoGrowth):
    """The scoring stage's presence side: answers each call of the time loop with the sum of
    what every region partition found for that same call (`ExposureMerge`, one per index).

    The stage advances the loop to a moment only once every region partition has passed it,
    so every answer for the calls up to there has been received (`receive`); `next_change`
    makes the loop stop at every flush some region answered, so none is skipped.
    """

    def __init__(self, plans: Sequence[IndexPlan]) -> None:
        self.merges = [ExposureMerge() for _ in plans]
        self._answers: dict[CallKey, dict[int, list[tuple[int, Exposure]]]] = {}
        self._forgotten: list[tuple[int, int, list[tuple[str, str]]]] = []
        self._probes: dict[CallKey, dict[int, dict[int, list[Exposure]]]] = {}
        self._now: int | None = None

    def receive(self, part: int, call: CallKey, index: int, exposures: Iterable[Exposure]) -> None:
        """What region partition `part` found for `call` in `index`."""
        self._answers.setdefault(call, {}).setdefault(index, []).extend((part, e) for e in exposures)

    def receive_forgotten(self, day: int, index: int, sources: Iterable[tuple[str, str]]) -> None:
        """Sources a region partition forgot at `day` (every partition forgets the same)."""
        self._forgotten.append((day, index, list(sources)))

    def receive_probe(self, part: int, call: CallKey, index: int, exposures: list[Exposure]) -> None:
        """What region partition `part` would find at once for an early case (`probe`)."""
        self._probes.setdefault(call, {}).setdefault(index, {})[part] = exposures

    def forget_probes(self, through: int) -> None:
        """Early cases known by `through` are scored now: their answers are no longer asked for."""
        self._probes = {call: parts for call, parts in self._probes.items() if int(call[1]) > through}  # type: ignore[call-overload]

    def pending(self) -> list[CallKey]:
        """Calls answered that the loop has not made (none once it has passed them all)."""
        return sorted(self._answers, key=repr)

    def add_pings(
        self, persons: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, snapped: Snapped | None = None
    ) -> None:
        raise ValueError("the scoring stage gets exposures, not pings")

    def buffered(self) -> bool:
        return False

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        self._now = watermark
        ingest, advance = flush_calls(before, watermark)
        return self._answer(ingest), self._answer(advance)

    def _answer(self, call: CallKey) -> Found:
        return {index: self.merges[index].apply(parts) for index, parts in sorted(self._answers.pop(call, {}).items())}

    def designate(self, event: AreaRisk, now: int, until: int | None) -> Found:
        return self._answer(area_call(event, now))

    def case(self, window: CaseWindow, known_at: int) -> Found:
        return self._answer(case_call("case", window, known_at))

    def probe(self, index: int, window: CaseWindow, known_at: int) -> list[Exposure]:
        parts = self._probes.get(case_call("probe", window, known_at), {}).get(index, {})
        by_pair: dict[str, list[tuple[int, Exposure]]] = {}
        for part, exposures in sorted(parts.items()):
            for exposure in exposures:
                by_pair.setdefault(exposure.exposure_id, []).append((part, exposure))
        return [_sum(found) for found in by_pair.values()]

    def expire(self, day: int) -> None:
        self._forget_through(day)

    def _forget_through(self, moment: int | None) -> None:
        if moment is None:
            return
        due = [item for item in self._forgotten if item[0] <= moment]
        self._forgotten = [item for item in self._forgotten if item[0] > moment]
        for index in {index for _, index, _ in due}:
            self.merges[index].forget({s for _, i, sources in due if i == index for s in sources})

    def exposures(self, index: int) -> list[Exposure]:
        # Asked at a rule switch, right after the flush at the switch: what every region forgot by then is gone.
        self._forget_through(self._now)
        return self.merges[index].current()

    def next_change(self) -> int | None:
        flushes = [int(call[2]) for call in self._answers if call[0] in ("ingest", "advance")]  # type: ignore[call-overload]
        return min(flushes, default=None)

    @property
    def area_cells_filled(self) -> int:
        return 0
