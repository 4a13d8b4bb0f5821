"""When each person is next due to be settled: a moment per person, taken in time order.

Each person's moment in force, and the persons filed under each moment (a bucket) with a
heap of the distinct moments: persons of a city are mostly due at the same few moments
(ticks, reviews), so the heap is small and its entries are integers. Moving a person's
moment earlier files them again; entries whose moment is no longer in force are skipped
when their bucket comes up. Moving it later (`defer`) files nothing: the entry already
filed, which is earlier, stands in for it and is filed again at the later moment when it
comes up. A person in contact with a case is deferred once per exposure record (a record
every tick, each proved not to change them); with a heap of (moment, person) entries,
re-queuing them was a sixth of the default 10,000 x 30 city's replay.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class DueQueue:
    """Each person's next moment; a person has one or none."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}
        """Each person's moment in force. The person is filed at that moment or before it."""
        self._filed: dict[int, list[str]] = {}
        """Persons by the moment they were filed at (some no longer due then)."""
        self._moments: list[int] = []
        """A heap of the moments `_filed` holds."""

    def at(self, person: str) -> int | None:
        """The person's moment (None: not due)."""
        return self._at.get(person)

    def schedule(self, person: str, moment: int) -> None:
        """The person is due at `moment` unless due earlier already."""
        current = self._at.get(person)
        if current is not None and current <= moment:
            return
        self._at[person] = moment
        self._file(person, moment)

    def defer(self, person: str, moment: int) -> None:
        """The person, due now at or before `moment`, is due at `moment` instead."""
        current = self._at[person]
        if moment < current:
            raise ValueError("defer moves a moment later; schedule moves it earlier")
        self._at[person] = moment

    def drop(self, person: str) -> None:
        """The person is not due any more."""
        self._at.pop(person, None)

    def take(self, until: int) -> Iterator[str]:
        """Every person due at or before `until`, each no longer due once given, in time order of
        the moments they were filed at (by name among those filed before the take reached it).

        Persons may be scheduled while this runs: those due by `until` are given too."""
        moments, filed, due_at = self._moments, self._filed, self._at
        while moments and moments[0] <= until:
            moment = heapq.heappop(moments)
            persons = filed.pop(moment)
            persons.sort()
            given = 0
            try:
                for given, person in enumerate(persons, 1):
                    due = due_at.get(person)
                    if due is None or due < moment:
                        continue  # not due, or due earlier, filed there too
                    if due > until:
                        self._file(person, due)  # deferred past `until`: filed at its moment now
                        continue
                    del due_at[person]
                    yield person
            finally:
                for person in persons[given:]:  # stopped part-way (the caller raised): the rest stay filed
                    self._file(person, moment)

    def next(self) -> int | None:
        """The earliest moment some person is due at (None: nobody is)."""
        moments, filed, due_at = self._moments, self._filed, self._at
        while moments:
            moment = moments[0]
            persons = filed[moment]
            # Entries no longer due here are dropped (from the end: each is looked at once).
            while persons:
                due = due_at.get(persons[-1])
                if due == moment:
                    return moment
                person = persons.pop()
                if due is not None and due > moment:
                    self._file(person, due)
            heapq.heappop(moments)
            del filed[moment]
        return None

    def _file(self, person: str, moment: int) -> None:
        persons = self._filed.get(moment)
        if persons is None:
            self._filed[moment] = [person]
            heapq.heappush(self._moments, moment)
        else:
            persons.append(person)
