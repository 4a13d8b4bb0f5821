"""When each person is next due to be settled: a moment per person, taken in time order.

A heap of (moment, person) entries, and each person's moment in force. Moving a person's
moment earlier pushes an entry; entries whose moment is no longer in force are skipped
when they surface. Moving it later (`defer`) pushes nothing: the entry already queued,
which is earlier, stands in for it and is queued again at the later moment when it
surfaces. A person in contact with a case is deferred once per exposure record (a record
every tick, each proved not to change them); settling lags only a tick or two behind, so
the stand-in surfaces often (def 4,000 x 20: 201 k pushes for 234 k records, not fewer by much).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class DueQueue:
    """Each person's next moment; a person has one or none."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._at: dict[str, int] = {}
        """Each person's moment in force. Some entry at or before it is in the heap."""

    def at(self, person: str) -> int | None:
        """The person's moment (None: not due)."""
        return self._at.get(person)

    def schedule(self, person: str, moment: int) -> None:
        """The person is due at `moment` unless due earlier already."""
        current = self._at.get(person)
        if current is not None and current <= moment:
            return
        self._at[person] = moment
        heapq.heappush(self._heap, (moment, person))

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
        """Every person due at or before `until`, each no longer due once given, in time order of their entries.

        Persons may be scheduled while this runs: those due by `until` are given too."""
        heap, due_at = self._heap, self._at
        while heap and heap[0][0] <= until:
            moment, person = heap[0]
            due = due_at.get(person)
            if due is not None and due > until:
                # Deferred past `until`: queued at its moment now, in one sift (most entries surface so).
                heapq.heapreplace(heap, (due, person))
                continue
            heapq.heappop(heap)
            if due is None or due < moment:
                continue  # not due, or due earlier at an entry of its own
            del due_at[person]
            yield person

    def next(self) -> int | None:
        """The earliest moment some person is due at (None: nobody is)."""
        heap, due_at = self._heap, self._at
        while heap:
            moment, person = heap[0]
            due = due_at.get(person)
            if due == moment:
                return moment
            if due is not None and due > moment:
                heapq.heapreplace(heap, (due, person))
            else:
                heapq.heappop(heap)
        return None
