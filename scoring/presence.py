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
watermark passed, and `expire(watermark)`, which deletes presence older than each
kind's look-back (at most the retention): memory stays bounded by window x active
population.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from scoring.areas import AreaTimeline
from scoring.cells import Snapped, snap_all, taken
from scoring.celltable import Rows
from scoring.contacts import EVERY_DAY, OPEN_END, ContactEngine, Source, Tally
from scoring.crowd_runs import CrowdReports
from scoring.exposure import AREA, CaseWindow, ContactSpec, Exposure, exposure_record
from scoring.pseudonyms import Numbering, Persons


StayRows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Stays named by pseudonym, as they travel between stages: (persons, cells, starts, ends)."""


@dataclass(frozen=True, slots=True)
class PresenceStats:
    """What the index holds now."""

    persons: int
    stays: int
    stays_by_kind: dict[str, int]
    sources: int
    """Cases and designation periods held, counted once per contact kind they are matched for."""
    designations: int
    exposures: int
    nbytes: int
    """Bytes of the stay and presence arrays (the part that grows with population x window)."""


def area_resolution(specs: Sequence[ContactSpec]) -> int:
    """The resolution an index fills designations at by default: its finest contact cells'."""
    return max(spec.resolution for spec in specs)


class PresenceIndex:
    """Contacts with cases and presence in risk areas, from pings."""

    def __init__(
        self,
        specs: Sequence[ContactSpec],
        retention_s: int,
        area_kind: str | None = None,
        area_levels: Collection[str] | None = None,
        owns: Callable[[np.ndarray], np.ndarray] | None = None,
        by_day: bool = True,
    ) -> None:
        """`area_kind` names the spec whose stays and cells areas use (default: the finest).

        `area_levels`: the designation levels whose presence is looked for (default: all).
        Rules that count only high designations need not pay for medium ones: every resident
        of a designated district is co-present with it all day, a new record every tick.

        `by_day`: records carry their minutes by day. Only points rules read them, and rebuilding
        them for every pair every tick is a tenth of an outbreak city's replay: an index none of
        whose rule sets has points rules leaves them out (`scoring.city.IndexPlan`), and its
        tallies keep no days either.

        `owns`: the cells this index counts co-presence in (a region partition's, see
        `scoring.regions`); its stays then come from a person-keyed stage (`apply_stays`).
        None: the whole city, from pings.
        """
        if not specs:
            raise ValueError("a presence index needs at least one contact spec")
        if len({s.kind for s in specs}) != len(specs):
            raise ValueError("contact kinds must be distinct")
        self.specs = tuple(specs)
        self.retention_s = retention_s
        self._engines = [ContactEngine(s.kind, s.max_gap_s, s.include_neighbours, owns, by_day) for s in self.specs]
        area_spec = max(self.specs, key=lambda s: s.resolution) if area_kind is None else self._spec(area_kind)
        self._area_engine = self._engines[self.specs.index(area_spec)]
        self._areas = AreaTimeline(area_spec.resolution)
        self._area_levels = None if area_levels is None else frozenset(area_levels)
        self._by_day = by_day
        self._persons = Numbering()
        self._case_known: dict[str, int] = {}
        self._emitted: dict[tuple[str, str], dict[int, Exposure]] = {}
        """The last exposure emitted, by (kind, source ref) then person number."""
        self._crowds: dict[tuple[str, str], CrowdReports] = {}
        """The records of areas' crowds (`scoring.crowd_runs`), by (kind, source ref)."""
        self._forgotten: list[CrowdReports] = []
        """Crowds of sources forgotten (`expire`) while records of theirs wait: delivered when due."""
        self._hold = False

    def _spec(self, kind: str) -> ContactSpec:
        for spec in self.specs:
            if spec.kind == kind:
                return spec
        raise ValueError(f"no contact spec of kind {kind!r}")

    # -- inputs -----------------------------------------------------------------

    def ingest(self, person: str, ts: int, lat: float, lon: float) -> list[Exposure]:
        """Apply one ping (a convenience: batches are much faster)."""
        return self.ingest_batch([person], np.array([ts]), np.array([lat]), np.array([lon]))

    def ingest_batch(
        self,
        persons: Persons,
        ts: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        snapped: Snapped | None = None,
        tick: int | None = None,
    ) -> list[Exposure]:
        """Apply a batch of pings: pseudonyms (or `Coded` ones), epoch seconds, degrees, as numpy or Arrow arrays;
        `snapped`: their cells at some resolutions, snapped already (`scoring.cells.snap_all`); `tick`: the end
        of the time loop's tick they are taken in, when growth is held here (`hold_growth`).

        Any order, any mix of persons; pings later than ones already applied are
        corrections, not errors. Returns the exposures that changed, grouped by
        kind and source.
        """
        if len(persons) == 0:
            return []
        numbers = self._persons.numbers(persons)
        ts = np.asarray(ts, dtype=np.int64)
        order = np.lexsort((ts, numbers))
        numbers, ts = numbers[order], ts[order]
        lat = np.asarray(lat, dtype=np.float64)[order]
        lon = np.asarray(lon, dtype=np.float64)[order]
        cells = snap_all(lat, lon, [s.resolution for s in self.specs], taken(snapped, order))
        for spec, engine in zip(self.specs, self._engines):
            engine.ingest(numbers, ts, cells[spec.resolution])
        return self._drain(tick)

    def apply_stays(self, kind: str, added: StayRows, withdrawn: StayRows) -> list[Exposure]:
        """Stays of one contact kind from a person-keyed stage (`PersonStays`): new or closed, and
        withdrawn (a late ping split them). Returns the exposures that changed."""
        engine = self._engines[self.specs.index(self._spec(kind))]
        # Numbered in one lookup: a lookup costs about a millisecond however few names it asks for.
        numbers = self._persons.numbers(np.concatenate([added[0], withdrawn[0]])) if len(added[0]) + len(withdrawn[0]) else \
            np.empty(0, dtype=np.int64)
        engine.apply_stays(_rows(added, numbers[:len(added[0])]), _rows(withdrawn, numbers[len(added[0]):]))
        return self._drain()

    def case(self, window: CaseWindow, known_at: int | None = None) -> list[Exposure]:
        """Learn of a case, a change of its window, or its retraction.

        `known_at` is the event time the case became known (the positive result's);
        its exposures then carry `known_at` = the later of that and their last
        contact. A case stays known from the earliest time it was told.
        """
        if (
            not window.retracted
            and window.infectious_until is not None
            and window.infectious_until <= window.infectious_from
        ):
            raise ValueError("infectious_until must be after infectious_from")
        if window.retracted:
            self._case_known.pop(window.case_ref, None)
        elif known_at is not None:
            known_at = min(known_at, self._case_known.get(window.case_ref, known_at))
            self._case_known[window.case_ref] = known_at
        else:
            known_at = self._case_known.get(window.case_ref)
        for spec, engine in zip(self.specs, self._engines):
            if window.retracted:
                engine.remove_source(window.case_ref)
            else:
                end = OPEN_END if window.infectious_until is None else window.infectious_until
                person = int(self._persons.numbers([window.person])[0])
                engine.set_source(
                    Source(window.case_ref, spec.kind, person, window.infectious_from, end, known_at=known_at)
                )
        return self._drain()

    def probe(self, window: CaseWindow, known_at: int) -> list[Exposure]:
        """The exposures `case(window, known_at)` would report at once from the stays already
        closed, without learning of the case (nothing here changes): for early escalations."""
        number = self._persons.find(window.person)
        if window.retracted or number < 0:
            return []
        end = OPEN_END if window.infectious_until is None else window.infectious_until
        found = []
        for spec, engine in zip(self.specs, self._engines):
            for who, tally in sorted(engine.probe(int(number), window.infectious_from, end).items()):
                days = sorted(tally.by_day)
                found.append(Exposure(
                    exposure_id=Exposure.make_id(self._persons.names[who], spec.kind, window.case_ref),
                    person=self._persons.names[who], kind=spec.kind, source=window.case_ref,
                    first_at=tally.first, last_at=tally.last, minutes=tally.seconds / 60,
                    minutes_by_day=tuple((day, tally.by_day[day] / 60) for day in days),
                    known_at=max(known_at, tally.last),
                ))
        return found

    def designate(
        self,
        area_ref: str,
        level: str,
        geometry: BaseModel | dict[str, Any],
        valid_from: int,
        valid_until: int | None = None,
        known_at: int | None = None,
    ) -> list[Exposure]:
        """Learn of an area designation (GeoJSON Polygon or MultiPolygon); `low` ends the risk.

        Each medium or high period of an area is a source of its own (an opaque
        ref); its exposures count minutes by day from the period's start, and carry
        `known_at` = the later of their last presence and when the designation
        became known (`known_at`, by default `valid_from`).
        """
        before, after = self._areas.designate(area_ref, level, geometry, valid_from, valid_until, known_at)
        kept = {p.source for p in after if self._area_levels is None or p.level in self._area_levels}
        for period in before + after:
            if period.source not in kept:
                self._area_engine.remove_source(period.source)
        for period in after:
            if period.source not in kept:
                continue
            self._area_engine.set_source(
                Source(period.source, AREA, -1, period.start, period.end, period.level, period.cells, period.known_at)
            )
        return self._drain()

    @property
    def areas(self) -> AreaTimeline:
        """The designations held, and the resolution their cells are filled at."""
        return self._areas

    def advance(self, watermark: int, tick: bool = False) -> list[Exposure]:
        """Move event time: last pings whose stay cap the watermark passed now count. `tick`: the
        watermark ends a tick of the time loop (see `hold_growth`)."""
        for engine in self._engines:
            engine.advance(watermark)
        return self._drain(watermark if tick else None)

    def hold_growth(self, hold: bool) -> bool:
        """Hold the growth of areas' crowds as `GrowthRuns` would (`scoring.crowd_runs`), or stop: True when
        held here (an index whose records carry minutes by day keeps no crowds, and holds nothing).

        Holding, a tick's drains (`ingest_batch`, `advance` with `tick`) give what `GrowthRuns.tick` would
        deliver of the area records they found, the others what `GrowthRuns.passing` would, and
        `refresh_growth` at the end of each tick what falls due."""
        self._hold = hold and not self._by_day
        return self._hold

    def refresh_growth(self, now: int) -> list[Exposure]:
        """The area records waiting whose runs' refresh fell due at the end of the tick `now`."""
        names = self._persons.names
        found = [e for crowd in [*self._crowds.values(), *self._forgotten] for e in crowd.refresh(names, now)]
        self._forgotten = [crowd for crowd in self._forgotten if crowd.waiting.any()]
        return found

    def release_growth(self) -> list[Exposure]:
        """Every area record waiting (the time loop settles everything next)."""
        names = self._persons.names
        found = [e for crowd in [*self._crowds.values(), *self._forgotten] for e in crowd.release(names)]
        self._forgotten = []
        return found

    def next_change(self) -> int | None:
        """The earliest watermark at which `advance` could find anything (None: none until new input).

        Until then time passing changes nothing here, so a caller may jump the watermark
        straight to it instead of stepping through the quiet stretch.
        """
        closes = [moment for engine in self._engines if (moment := engine.next_close()) is not None]
        return min(closes, default=None)

    def expire(self, watermark: int) -> list[tuple[str, str]]:
        """Delete presence that ended before `watermark` minus each kind's look-back (at most the retention).

        Cases and designations that ended before then are forgotten too: their
        exposures are final and are not withdrawn. Late pings older than that are
        not kept. Calling this as the watermark moves (it may be less often than
        `advance`) bounds memory by window x active population. Returns the (kind, source
        ref) of the sources forgotten.
        """
        gone = []
        for spec, engine in zip(self.specs, self._engines):
            cutoff = watermark - min(spec.lookback_s, self.retention_s)
            for forgotten in engine.expire(cutoff):
                self._emitted.pop(forgotten, None)
                crowd = self._crowds.pop(forgotten, None)
                if crowd is not None and crowd.waiting.any():  # (the source's records are final: none comes)
                    self._forgotten.append(crowd)
                gone.append(forgotten)
            if engine is self._area_engine:
                self._areas.forget_ended(cutoff)
        return gone

    # -- outputs ------------------------------------------------------------------

    def exposures(self) -> list[Exposure]:
        """The current (not retracted) exposure of every pair still held."""
        names = self._persons.names
        crowds = (e for crowd in self._crowds.values() for e in crowd.records(names))
        return sorted([*(e for by_id in self._emitted.values() for e in by_id.values()), *crowds], key=_order)

    def stats(self) -> PresenceStats:
        """Sizes of what the index holds."""
        return PresenceStats(
            persons=len(self._persons),
            stays=sum(len(e.stays) for e in self._engines),
            stays_by_kind={e.kind: len(e.stays) for e in self._engines},
            sources=sum(e.sources() for e in self._engines),
            designations=len(self._areas),
            exposures=sum(len(v) for v in self._emitted.values()) + sum(len(c) for c in self._crowds.values()),
            nbytes=sum(e.nbytes for e in self._engines),
        )

    def _drain(self, tick: int | None = None) -> list[Exposure]:
        """The records of the pairs whose tallies changed (`tick`: the end of the time loop's tick when
        the drain is a tick's, see `hold_growth`)."""
        out: list[Exposure] = []
        by_day = self._by_day
        for engine in self._engines:
            for source, pairs in engine.drain():
                key = (source.kind, source.ref)
                if isinstance(pairs, tuple):  # an area's crowd
                    crowd = self._crowds.get(key)
                    if crowd is None:
                        crowd = self._crowds[key] = CrowdReports(*key)
                    out += crowd.report(source, *pairs, self._persons.names, tick, self._hold)
                    if not len(crowd):
                        del self._crowds[key]
                    continue
                emitted = self._emitted.setdefault(key, {})
                self._records(out, source, emitted, pairs, by_day)
                if not emitted:
                    del self._emitted[key]
        return out

    def _records(
        self, out: list[Exposure], source: Source, emitted: dict[int, Exposure], pairs: list[tuple[int, Tally | None]],
        by_day: bool,
    ) -> None:
        """The records of a source's changed pairs (`ContactEngine.drain`), those that changed put in `out`."""
        kind, ref, level, source_known = source.kind, source.ref, source.level, source.known_at
        for who, tally in pairs:
            previous = emitted.get(who)
            if tally is None or tally.seconds <= 0:
                if previous is not None:
                    del emitted[who]
                    out.append(replace(previous, retracted=True))
                continue
            if previous is None:
                person = self._persons.names[who]
                exposure_id = Exposure.make_id(person, kind, ref)
            else:
                person, exposure_id = previous.person, previous.exposure_id
            last = tally.last
            # A record per pair per tick: built positionally, past the frozen class's checks.
            exposure = exposure_record(
                exposure_id, person, kind, ref, tally.first, last, tally.seconds / 60,
                _minutes_by_day(tally, previous) if by_day else (), level, False,
                None if source_known is None else max(source_known, last),
            )
            # Mostly the contact grew: the cheap fields tell before the whole record is compared.
            if previous is None or exposure.last_at != previous.last_at or exposure != previous:
                emitted[who] = exposure
                out.append(exposure)


def _minutes_by_day(tally: Tally, previous: Exposure | None) -> tuple[tuple[int, float], ...]:
    """The tally's minutes by day, sorted; reporting it (`changed_from` is reset).

    A pair co-present all day is reported every tick with one day grown: the days before
    the first one changed are taken from the pair's previous record rather than rebuilt.
    """
    by_day = tally.by_day
    since, tally.changed_from = tally.changed_from, OPEN_END
    if previous is None or since == EVERY_DAY:
        days = by_day if len(by_day) == 1 else sorted(by_day)
        return tuple([(day, by_day[day] / 60) for day in days])
    before = previous.minutes_by_day
    kept = bisect_left(before, (since,))
    if len(by_day) == len(before):  # no new day: the changed ones are the previous record's last
        if kept == len(before) - 1:  # nearly always: the day of the tick (a comprehension costs a call)
            day = before[kept][0]
            return before[:kept] + ((day, by_day[day] / 60),)
        changed = [day for day, _ in before[kept:]]
    else:
        changed = sorted(day for day in by_day if day >= since)
    return before[:kept] + tuple([(day, by_day[day] / 60) for day in changed])


def _rows(stays: StayRows, numbers: np.ndarray) -> Rows:
    _, cell, start, end = stays
    return Rows(np.asarray(cell, dtype=np.int64), numbers, np.asarray(start, dtype=np.int64),
                np.asarray(end, dtype=np.int64))


def _order(exposure: Exposure) -> tuple[str, str, str]:
    return (exposure.source, exposure.kind, exposure.person)
