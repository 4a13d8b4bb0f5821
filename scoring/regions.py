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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from scoring.cells import disc, parent, snap_all
from scoring.celltable import Rows
from scoring.exposure import ContactSpec, Exposure
from scoring.presence import StayRows
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
        members = [disc(cell) for cell in cells.tolist()]
        sizes = np.fromiter((len(m) for m in members), dtype=np.int64, count=len(members))
        around = np.fromiter((c for m in members for c in m), dtype=np.int64, count=int(sizes.sum()))
        pairs = np.unique(np.stack([np.repeat(rows, sizes), self.region_of(around)]), axis=1)
        return pairs[0], pairs[1]

    def owner(self, owned: Iterable[int]) -> Callable[[np.ndarray], np.ndarray]:
        """The `owns` test of a partition holding regions `owned`: which cells it counts in."""
        mine = np.array(sorted(set(owned)), dtype=np.int64)
        return lambda cells: np.isin(self.region_of(cells), mine)


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
        self._names: list[str] = []
        self._numbers: dict[str, int] = {}

    def ingest(self, persons: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> list[StayChange]:
        """A batch of pings, any order: the stays they close, add or withdraw, per kind."""
        if len(persons) == 0:
            return []
        numbers = np.fromiter((self._number(p) for p in np.asarray(persons, dtype=object).tolist()),
                              dtype=np.int64, count=len(persons))
        ts = np.asarray(ts, dtype=np.int64)
        order = np.lexsort((ts, numbers))
        cells = snap_all(np.asarray(lat, dtype=np.float64)[order], np.asarray(lon, dtype=np.float64)[order],
                         [spec.resolution for spec in self.specs])
        return [self._named(spec, *stage.ingest(numbers[order], ts[order], cells[spec.resolution]))
                for spec, stage in zip(self.specs, self._stages)]

    def advance(self, watermark: int) -> list[StayChange]:
        """Event time reached `watermark`: last stays whose cap it passed, now closed, per kind."""
        return [self._named(spec, stage.advance(watermark), Rows.empty()) for spec, stage in zip(self.specs, self._stages)]

    def expire(self, watermark: int, retention_s: int) -> None:
        """Forget stays no kind looks back to any more (see `PresenceIndex.expire`)."""
        for spec, stage in zip(self.specs, self._stages):
            stage.expire(watermark - min(spec.lookback_s, retention_s))

    def _number(self, person: str) -> int:
        number = self._numbers.get(person)
        if number is None:
            number = self._numbers[person] = len(self._names)
            self._names.append(person)
        return number

    def _named(self, spec: ContactSpec, added: Rows, withdrawn: Rows) -> StayChange:
        return StayChange(spec, self._stays(added), self._stays(withdrawn))

    def _stays(self, rows: Rows) -> StayRows:
        persons = np.array([self._names[n] for n in rows.owner.tolist()], dtype=object)
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


def _routed(stays: StayRows, regions: RegionMap, region: int, neighbours: bool) -> StayRows:
    rows, reached = regions.routes(stays[1], neighbours)
    keep = np.unique(rows[reached == region])
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
