"""The records of an area's crowd, and runs of growth held over arrays (`scoring.runs`, a crowd at a time).

Presence reports a record for each person whose co-presence with a source changed. For an
area's crowd (`scoring.crowd`) it keeps the newest record found of each person as columns,
and, when asked to hold growth (`hold`), decides over the columns what `GrowthRuns` decides
record by record: a record that only extends the newest (`scoring.runs.extends`: the same
first contact and level, a last contact and minutes no less) waits while the tick is less
than `REFRESH_S` past the last contact of the record delivered last. The records that wait
are then never built: a resident of a designated district costs a record every six hours,
and no Python step a tick either. What is delivered, and in which order for each person, is
what `GrowthRuns` delivers given every record (a test compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scoring.contacts import Source
from scoring.crowd import Tallies, positions
from scoring.exposure import Exposure, exposure_record
from scoring.runs import REFRESH_S

NO_RUN = -1
"""`delivered` of a person in no run: their next record is delivered (a run starts if in a tick)."""


_NOT_KNOWN = np.iinfo(np.int64).min
"""A record's `known_at` of None, in a column (compared, never stored)."""


def _known_at(source_known: int | None, last: np.ndarray) -> np.ndarray:
    """Each record's `known_at` (`_NOT_KNOWN` for None): the later of its last contact and its source's."""
    return np.full(len(last), _NOT_KNOWN, dtype=np.int64) if source_known is None else np.maximum(last, source_known)


class CrowdReports:
    """The newest record found of each person of one crowd, and the run each is in (sorted by person)."""

    def __init__(self, kind: str, ref: str) -> None:
        self.kind, self.ref = kind, ref
        self.level: str | None = None
        self.source_known: int | None = None
        """The source's level and `known_at` when the newest records were found."""
        self.newest = Tallies()
        """The newest record found of each person (seconds, first and last contact)."""
        self.delivered = np.empty(0, dtype=np.int64)
        """The last contact of the record of each person's run delivered last (`NO_RUN`: none)."""
        self.waiting = np.empty(0, dtype=bool)
        """The newest record waits (it was found after the one delivered, which it extends)."""
        self._ids: dict[int, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self.newest)

    def report(
        self, source: Source, tallies: Tallies, held: np.ndarray, names: Sequence[str], tick: int | None, hold: bool
    ) -> list[Exposure]:
        """The records to deliver of the persons changed (`Crowd.drain`): every new or changed record, or,
        holding, what `GrowthRuns.tick` (`tick`: the tick's end) or `GrowthRuns.passing` (None) gives."""
        out: list[Exposure] = []
        at, known = positions(self.newest.who, tallies.who)
        present = held & (tallies.seconds > 0)
        row = np.minimum(at, len(self) - 1)  # each person's row, where `known`
        if len(self):
            old, delivered, waiting = self.newest.take(row), self.delivered[row], known & self.waiting[row]
        else:
            old = Tallies(*(np.zeros(len(at), dtype=np.int64) for _ in range(4)))
            delivered, waiting = np.full(len(at), NO_RUN, dtype=np.int64), np.zeros(len(at), dtype=bool)
        same_level = source.level == self.level
        extends = known & same_level & (tallies.first == old.first) & (tallies.last >= old.last) \
            & (tallies.seconds >= old.seconds)
        changed = present & ~(extends & (tallies.last == old.last) & (tallies.seconds == old.seconds)
                              & (_known_at(source.known_at, tallies.last) == _known_at(self.source_known, old.last)))
        none = np.zeros(len(at), dtype=bool)
        if not hold:
            waits, first = none, none
        elif tick is None:
            waits, first = none, changed & waiting
        else:
            waits = changed & extends & (delivered != NO_RUN) & (tick < delivered + REFRESH_S)
            first = changed & waiting & ~extends
        # Gone, retracted (a designation withdrawn, a late ping), and what waits before a record that does not
        # extend it: as found, before the source changed.
        for index in np.flatnonzero((first | known & ~present)).tolist():
            if hold and waiting[index]:
                out.append(self._record(names, int(row[index])))
            if not present[index]:
                out.append(self._record(names, int(row[index]), retracted=True))
        delivers = changed & ~waits
        self.level, self.source_known = source.level, source.known_at
        self._take(at, known, present, changed, tallies)
        rows = positions(self.newest.who, tallies.who)[0]
        if hold:
            self.waiting[rows[waits]] = True
            self.waiting[rows[delivers]] = False
            self.delivered[rows[delivers]] = NO_RUN if tick is None else tallies.last[delivers]
        out += [self._record(names, row) for row in rows[delivers].tolist()]
        return out

    def refresh(self, names: Sequence[str], now: int) -> list[Exposure]:
        """At the end of the tick `now`: runs whose refresh fell due deliver what waits, and those with
        nothing waiting end (`GrowthRuns.tick`'s last step)."""
        due = (self.delivered != NO_RUN) & (self.delivered + REFRESH_S <= now)
        if not due.any():
            return []
        ready = np.flatnonzero(due & self.waiting)
        out = [self._record(names, row) for row in ready.tolist()]
        self.waiting[ready] = False
        self.delivered[ready] = self.newest.last[ready]
        self.delivered[due & (self.delivered + REFRESH_S <= now)] = NO_RUN
        return out

    def release(self, names: Sequence[str]) -> list[Exposure]:
        """Every record waiting, runs ended (`GrowthRuns.release`)."""
        out = [self._record(names, row) for row in np.flatnonzero(self.waiting).tolist()]
        self.waiting[:] = False
        self.delivered[:] = NO_RUN
        return out

    def records(self, names: Sequence[str]) -> list[Exposure]:
        """The newest record of every person."""
        return [self._record(names, row) for row in range(len(self))]

    def _take(self, at: np.ndarray, known: np.ndarray, present: np.ndarray, changed: np.ndarray,
              tallies: Tallies) -> None:
        """The columns take the records found (new persons come in); the persons gone leave."""
        update = changed & known
        rows = at[update]
        self.newest.seconds[rows] = tallies.seconds[update]
        self.newest.first[rows] = tallies.first[update]
        self.newest.last[rows] = tallies.last[update]
        gone = known & ~present
        if gone.any():
            keep = np.ones(len(self), dtype=bool)
            keep[at[gone]] = False
            for who in tallies.who[gone].tolist():
                self._ids.pop(who, None)
            self.newest = self.newest.take(keep)
            self.delivered, self.waiting = self.delivered[keep], self.waiting[keep]
        new = changed & ~known
        if new.any():
            where = positions(self.newest.who, tallies.who[new])[0]
            self.newest = self.newest.inserted(where, tallies.take(new))
            self.delivered = np.insert(self.delivered, where, NO_RUN)
            self.waiting = np.insert(self.waiting, where, False)

    def _record(self, names: Sequence[str], row: int, retracted: bool = False) -> Exposure:
        who = int(self.newest.who[row])
        ids = self._ids.get(who)
        if ids is None:
            person = names[who]
            ids = self._ids[who] = (person, Exposure.make_id(person, self.kind, self.ref))
        last = int(self.newest.last[row])
        known = self.source_known
        return exposure_record(
            ids[1], ids[0], self.kind, self.ref, int(self.newest.first[row]), last,
            int(self.newest.seconds[row]) / 60, (), self.level, retracted,
            None if known is None else max(known, last),
        )
