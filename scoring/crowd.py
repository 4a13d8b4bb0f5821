"""Co-presence with one designated area, as arrays: a district's residents are a crowd, not pairs.

Every resident of a designated district is co-present with it all day: each tick grows the
tally of thousands of persons with one source. `Crowd` keeps those tallies as columns sorted
by person number and grows them a tick at a time with a few numpy calls, where a tally
object per pair cost a Python step per person per tick (areas were nine in ten of an outbreak
city's co-presence records). Seconds are whole, so sums are exact whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _none() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


@dataclass(slots=True)
class Tallies:
    """Persons' co-presence with one source: columns of one length, sorted by `who`."""

    who: np.ndarray = field(default_factory=_none)
    seconds: np.ndarray = field(default_factory=_none)
    first: np.ndarray = field(default_factory=_none)
    last: np.ndarray = field(default_factory=_none)

    def __len__(self) -> int:
        return len(self.who)

    def take(self, index: np.ndarray) -> "Tallies":
        """The rows at `index` (positions or a mask), copied."""
        return Tallies(self.who[index], self.seconds[index], self.first[index], self.last[index])

    def inserted(self, where: np.ndarray, rows: "Tallies") -> "Tallies":
        """These rows with `rows` inserted before positions `where` (`np.insert`), kept sorted by the caller."""
        return Tallies(*(np.insert(mine, where, theirs) for mine, theirs in (
            (self.who, rows.who), (self.seconds, rows.seconds), (self.first, rows.first), (self.last, rows.last))))


def positions(sorted_who: np.ndarray, who: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `who` is, or would go, in `sorted_who` (distinct, sorted), and whether it is there."""
    at = np.searchsorted(sorted_who, who)
    found = at < len(sorted_who)
    found[found] = sorted_who[at[found]] == who[found]
    return at, found


class Crowd:
    """The tallies of one area source, and the persons whose tally changed since `drain`."""

    def __init__(self) -> None:
        self.tallies = Tallies()
        self._changed: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.tallies)

    def add(self, who: np.ndarray, seconds: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        """Add overlaps of distinct persons `who` (sorted): seconds summed, first and last widened."""
        held = self.tallies
        at, found = positions(held.who, who)
        hit = at[found]
        held.seconds[hit] += seconds[found]
        held.first[hit] = np.minimum(held.first[hit], first[found])
        held.last[hit] = np.maximum(held.last[hit], last[found])
        new = ~found
        if new.any():
            self.tallies = held.inserted(at[new], Tallies(who[new], seconds[new], first[new], last[new]))
        self._changed.append(who)

    def touch(self, persons: np.ndarray) -> None:
        """Count `persons` as changed (their source was replaced: their records are reported again)."""
        self._changed.append(persons)

    def clear(self) -> None:
        """Forget every tally (the source is being rebuilt): each person held counts as changed."""
        self._changed.append(self.tallies.who)
        self.tallies = Tallies()

    def forget(self, persons: np.ndarray) -> None:
        """Forget the tallies of `persons` (sorted, distinct; they are matched again): those held count as changed."""
        at, found = positions(self.tallies.who, persons)
        if found.any():
            self._changed.append(persons[found])
            keep = np.ones(len(self.tallies), dtype=bool)
            keep[at[found]] = False
            self.tallies = self.tallies.take(keep)

    def drain(self) -> tuple[Tallies, np.ndarray] | None:
        """The persons changed since the last drain with their tallies now, and which of them are held
        (False: gone, its tally zeros); None when nobody changed."""
        if not self._changed:
            return None
        changed = np.unique(np.concatenate(self._changed))
        self._changed = []
        at, held = positions(self.tallies.who, changed)
        if held.all():
            return self.tallies.take(at), held
        now = Tallies(changed, *(np.zeros(len(changed), dtype=np.int64) for _ in range(3)))
        found = self.tallies.take(at[held])
        now.seconds[held], now.first[held], now.last[held] = found.seconds, found.first, found.last
        return now, held
