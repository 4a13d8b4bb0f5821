"""The presence index: pings in, exposures out (contacts with cases, area exposure).

`PresenceIndex` is pure and deterministic: it takes event times, never reads a
clock, and its exposures after a set of inputs do not depend on their arrival
order. Pings are snapped to H3 cells at every resolution the contact specs ask
for and turned into stays (`scoring.stays`); each contact kind has a
`ContactEngine` keeping stays and source presence keyed by cell
(`scoring.contacts`). Cases arrive as `CaseWindow`s from person scoring (late ones
find their contacts backward; open ones keep finding them forward), areas as
designations (`scoring.areas`). Every change of a (person, kind, source) co-presence
is emitted as a cumulative `Exposure`; the rule set decides what counts.

Time moves only through `advance(watermark)`, which closes stays whose cap the
watermark passed and deletes presence older than each kind's look-back (at most
the retention): memory stays bounded by window x active population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from scoring.areas import AreaTimeline
from scoring.cells import snap_all
from scoring.contacts import OPEN_END, Change, ContactEngine, Source
from scoring.exposure import AREA, CaseWindow, ContactSpec, Exposure


@dataclass(frozen=True, slots=True)
class PresenceStats:
    """What the index holds now."""

    persons: int
    stays: int
    sources: int
    exposures: int
    nbytes: int
    """Bytes of the stay and presence arrays (the part that grows with population x window)."""


class PresenceIndex:
    """Contacts with cases and presence in risk areas, from pings."""

    def __init__(self, specs: Sequence[ContactSpec], retention_s: int, area_kind: str | None = None) -> None:
        """`area_kind` names the spec whose stays and cells areas use (default: the finest)."""
        if not specs:
            raise ValueError("a presence index needs at least one contact spec")
        if len({s.kind for s in specs}) != len(specs):
            raise ValueError("contact kinds must be distinct")
        self.specs = tuple(specs)
        self.retention_s = retention_s
        self._engines = [ContactEngine(s.kind, s.max_gap_s, s.include_neighbours) for s in self.specs]
        area_spec = max(self.specs, key=lambda s: s.resolution) if area_kind is None else self._spec(area_kind)
        self._area_engine = self._engines[self.specs.index(area_spec)]
        self._areas = AreaTimeline(area_spec.resolution)
        self._number: dict[str, int] = {}
        self._names: list[str] = []
        self._emitted: dict[tuple[str, str], dict[str, Exposure]] = {}

    def _spec(self, kind: str) -> ContactSpec:
        for spec in self.specs:
            if spec.kind == kind:
                return spec
        raise ValueError(f"no contact spec of kind {kind!r}")

    # -- inputs -----------------------------------------------------------------

    def ingest(self, person: str, ts: int, lat: float, lon: float) -> list[Exposure]:
        """Apply one ping."""
        return self.ingest_batch([person], np.array([ts]), np.array([lat]), np.array([lon]))

    def ingest_batch(
        self,
        persons: Sequence[str] | np.ndarray,
        ts: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
    ) -> list[Exposure]:
        """Apply a batch of pings given as arrays (pseudonyms, epoch seconds, degrees)."""
        if len(persons) == 0:
            return []
        numbers = self._numbers(persons)
        ts = np.asarray(ts, dtype=np.int64)
        cells = snap_all(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64),
                         [s.resolution for s in self.specs])
        for spec, engine in zip(self.specs, self._engines):
            engine.ingest(numbers, ts, cells[spec.resolution])
        return self._drain()

    def case(self, window: CaseWindow) -> list[Exposure]:
        """Learn of a case, a change of its window, or its retraction."""
        if window.infectious_until is not None and window.infectious_until <= window.infectious_from:
            raise ValueError("infectious_until must be after infectious_from")
        for spec, engine in zip(self.specs, self._engines):
            if window.retracted:
                engine.remove_source(window.case_ref)
            else:
                end = OPEN_END if window.infectious_until is None else window.infectious_until
                engine.set_source(
                    Source(window.case_ref, spec.kind, self._number_of(window.person), window.infectious_from, end)
                )
        return self._drain()

    def designate(
        self,
        area_ref: str,
        level: str,
        geometry: BaseModel | dict[str, Any],
        valid_from: int,
        valid_until: int | None = None,
    ) -> list[Exposure]:
        """Learn of an area designation (GeoJSON Polygon or MultiPolygon); `low` ends the risk."""
        before, after = self._areas.designate(area_ref, level, geometry, valid_from, valid_until)
        kept = {p.source for p in after}
        for period in before:
            if period.source not in kept:
                self._area_engine.remove_source(period.source)
        for period in after:
            self._area_engine.set_source(
                Source(period.source, AREA, -1, period.start, period.end, period.level, period.cells)
            )
        return self._drain()

    def advance(self, watermark: int) -> list[Exposure]:
        """Move event time: close stays whose cap passed, delete presence past look-back."""
        for spec, engine in zip(self.specs, self._engines):
            for forgotten in engine.advance(watermark, watermark - min(spec.lookback_s, self.retention_s)):
                self._emitted.pop(forgotten, None)
        return self._drain()

    # -- outputs ------------------------------------------------------------------

    def exposures(self) -> list[Exposure]:
        """The current (not retracted) exposure of every pair still held."""
        return sorted((e for by_id in self._emitted.values() for e in by_id.values()), key=_order)

    def stats(self) -> PresenceStats:
        """Sizes of what the index holds."""
        return PresenceStats(
            persons=len(self._names),
            stays=sum(len(e.stays) for e in self._engines),
            sources=sum(e.sources() for e in self._engines),
            exposures=sum(len(v) for v in self._emitted.values()),
            nbytes=sum(e.nbytes for e in self._engines),
        )

    def _drain(self) -> list[Exposure]:
        out = []
        for engine in self._engines:
            for change in engine.drain():
                exposure = self._exposure(change)
                emitted = self._emitted.setdefault((change.source.kind, change.source.ref), {})
                previous = emitted.get(exposure.exposure_id) if exposure else None
                if exposure is None:
                    name = self._names[change.person]
                    gone = emitted.pop(Exposure.make_id(name, change.source.kind, change.source.ref), None)
                    if gone is not None:
                        out.append(replace(gone, retracted=True))
                elif exposure != previous:
                    emitted[exposure.exposure_id] = exposure
                    out.append(exposure)
        return sorted(out, key=_order)

    def _exposure(self, change: Change) -> Exposure | None:
        tally = change.tally
        if tally is None or tally.seconds <= 0:
            return None
        name = self._names[change.person]
        source = change.source
        return Exposure(
            exposure_id=Exposure.make_id(name, source.kind, source.ref),
            person=name,
            kind=source.kind,
            source=source.ref,
            first_at=tally.first,
            last_at=tally.last,
            minutes=tally.seconds / 60,
            minutes_by_day=tuple((day, seconds / 60) for day, seconds in sorted(tally.by_day.items())),
            level=source.level,
        )

    # -- pseudonyms to numbers --------------------------------------------------

    def _number_of(self, person: str) -> int:
        number = self._number.get(person)
        if number is None:
            number = self._number[person] = len(self._names)
            self._names.append(person)
        return number

    def _numbers(self, persons: Sequence[str] | np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(np.asarray(persons, dtype=object))
        known = np.fromiter((self._number_of(p) for p in uniques.tolist()), dtype=np.int64, count=len(uniques))
        return known[codes]


def _order(exposure: Exposure) -> tuple[str, str, str]:
    return (exposure.source, exposure.kind, exposure.person)
