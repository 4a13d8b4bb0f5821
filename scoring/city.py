"""Scoring a whole city from events in event-time order: people, presence and the wiring between.

`CityScorer` joins the person half (`People`) and the presence index: person events
go to people, and a change of someone's case windows goes to presence; pings go to
presence; the exposures presence finds go back to people, stamped with the moment
they became known. Replay feeds it a sorted file; the stream feeds the same two
halves through Kafka.

Pings are buffered and ingested in batches (presence is order independent), flushed
whenever presence must answer (a case window changed, an area was designated) and
every `ping_batch` pings. Level changes are settled up to `watermark - max_gap`:
exposures from stays still open at the watermark can only become known after that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from scoring.events import AreaRisk, Ping, TestResult, Visit
from scoring.exposure import CaseWindow, Exposure
from scoring.people import People, PersonChange
from scoring.presence import PresenceIndex
from scoring.rules import RuleSet
from scoring.timeutil import to_epoch


def known_at(exposure: Exposure, source_known: int | None, now: int) -> int:
    """When an exposure record became known, in event time.

    Co-presence is known once it has happened (`last_at`), and not before its source
    became known (a case confirmed, an area designated). A retraction is known when
    it is made (`now`): until then the exposure stood.
    """
    if exposure.retracted:
        return now
    return max(exposure.last_at, source_known if source_known is not None else exposure.last_at)


@dataclass
class CityCounts:
    """What a run saw."""

    pings: int = 0
    person_events: int = 0
    areas: int = 0
    exposures: int = 0
    exposed_pairs: set[str] = field(default_factory=set)


class CityScorer:
    """Score every person of a city from events fed in event-time order."""

    def __init__(self, rules: RuleSet, ping_batch: int = 200_000) -> None:
        self.rules = rules
        self.people = People(rules)
        specs = rules.contact_specs()
        self.index = PresenceIndex(specs, rules.retention_s)
        self.max_gap = max((spec.max_gap_s for spec in specs), default=0)
        self.ping_batch = ping_batch
        self.counts = CityCounts()
        self._source_known: dict[str, int] = {}
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._watermark: int | None = None
        self._changes: list[PersonChange] = []

    def add_pings(self, persons: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        """Pings (arrays) no earlier than anything fed before."""
        if len(ts) == 0:
            return
        self._buffer.append((np.asarray(persons, dtype=object), np.asarray(ts, dtype=np.int64), lat, lon))
        self._buffered += len(ts)
        self.counts.pings += len(ts)
        self._watermark = int(ts[-1]) if self._watermark is None else max(self._watermark, int(ts.max()))
        if self._buffered >= self.ping_batch:
            self.flush()

    def add_ping(self, ping: Ping) -> None:
        """One ping (convenience for the per-event path)."""
        self.add_pings(np.array([ping.person], dtype=object), np.array([to_epoch(ping.ts)]),
                       np.array([ping.lat]), np.array([ping.lon]))

    def add_event(self, event: Ping | Visit | TestResult | AreaRisk) -> None:
        """One event no earlier than anything fed before."""
        if isinstance(event, Ping):
            self.add_ping(event)
            return
        now = to_epoch(event.ts)
        self._watermark = now if self._watermark is None else max(self._watermark, now)
        if isinstance(event, AreaRisk):
            self.counts.areas += 1
            self.flush()
            until = None if event.valid_until is None else to_epoch(event.valid_until)
            found = self.index.designate(event.area, event.level, event.geometry, now, until)
            for exposure in found:
                self._source_known.setdefault(exposure.source, now)
            self._deliver(found, now)
            return
        self.counts.person_events += 1
        windows = self.people.apply_event(event)
        if windows:
            self.flush()
            for window in windows:
                self._case(window, now)

    def _case(self, window: CaseWindow, now: int) -> None:
        self._source_known.setdefault(window.case_ref, now)
        self._deliver(self.index.case(window), now)

    def flush(self) -> None:
        """Ingest buffered pings, let presence time advance, deliver what it found, settle."""
        if self._buffer:
            persons = np.concatenate([part[0] for part in self._buffer])
            ts = np.concatenate([part[1] for part in self._buffer])
            lat = np.concatenate([part[2] for part in self._buffer])
            lon = np.concatenate([part[3] for part in self._buffer])
            self._buffer, self._buffered = [], 0
            self._deliver(self.index.ingest_batch(persons, ts, lat, lon), int(ts.max()))
        if self._watermark is not None:
            self._deliver(self.index.advance(self._watermark), self._watermark)
            self._changes += self.people.settle(self._watermark - self.max_gap - 1)

    def _deliver(self, exposures: list[Exposure], now: int) -> None:
        stamped = [replace(e, known_at=known_at(e, self._source_known.get(e.source), now)) for e in exposures]
        stamped.sort(key=lambda e: (e.known_at, e.person, e.exposure_id))
        self.counts.exposures += len(stamped)
        for exposure in stamped:
            if exposure.retracted:
                self.counts.exposed_pairs.discard(exposure.exposure_id)
            else:
                self.counts.exposed_pairs.add(exposure.exposure_id)
            self._changes += self.people.apply_exposure(exposure)

    def finish(self, until: int | None = None) -> list[PersonChange]:
        """Flush everything and settle up to `until` (default: the last event time); all changes so far."""
        self.flush()
        end = until if until is not None else self._watermark
        if end is not None:
            self._deliver(self.index.advance(end), end)
            self._changes += self.people.settle(end)
        changes, self._changes = self._changes, []
        return changes
