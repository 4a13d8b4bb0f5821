"""From pings to stays: how long a person was in a cell.

A person stays in the cell of a ping from that ping until their next ping, but at
most `max_gap_s`, so sparse pings do not invent long stays. The stay of a person's
last ping is not known until their next ping arrives or the watermark passes the
cap; until then it is *open* and counts for nothing. Stays are therefore a pure
function of (the person's pings, the watermark), whatever order the pings came in:
`stays_from_pings` is that function. `StayTracker` computes it incrementally, with
a vectorised path for pings that arrive in order (nearly all of them); `restate`
recomputes the persons whose pings came out of order; `StayStage` puts the two
together as the person-keyed stage of presence detection.

At one instant a person is in one place: pings are keyed by (person, ts), so a
redelivered ping changes nothing, and of two different pings with the same ts the
one in the greater cell is kept (an arbitrary but order-independent choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.celltable import CellTable, Rows

NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class PersonStays:
    """The closed stays of one person, and whether their last ping's stay is still open."""

    stays: Rows
    last_open: bool


def dedupe_pings(person: np.ndarray, ts: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Of pings sorted by (person, ts), the indexes of one per (person, ts): the greatest cell."""
    same = (person[1:] == person[:-1]) & (ts[1:] == ts[:-1])
    if not same.any():
        return np.arange(len(person))
    order = np.lexsort((cell, ts, person))
    p, t = person[order], ts[order]
    last_of_instant = np.ones(len(order), dtype=bool)
    last_of_instant[:-1] = (p[1:] != p[:-1]) | (t[1:] != t[:-1])
    return order[last_of_instant]


def stays_from_pings(person: int, ts: np.ndarray, cell: np.ndarray, max_gap_s: int, watermark: int) -> PersonStays:
    """The stays of one person's pings (sorted by ts, one per ts) as of `watermark`."""
    if len(ts) == 0:
        return PersonStays(Rows.empty(), False)
    ends = np.minimum(ts + max_gap_s, np.append(ts[1:], np.iinfo(np.int64).max))
    last_open = bool(ts[-1] + max_gap_s > watermark)
    keep = len(ts) - 1 if last_open else len(ts)
    stays = Rows(cell[:keep], np.full(keep, person, dtype=np.int64), ts[:keep], ends[:keep])
    return PersonStays(stays, last_open)


class StayTracker:
    """Per person: the last ping, and whether its stay is still open.

    This is the person-keyed half of presence detection: it turns pings into
    closed stays, which the cell-keyed half (`CellTable`) stores and matches.
    """

    def __init__(self, max_gap_s: int) -> None:
        if max_gap_s <= 0:
            raise ValueError("max_gap_s must be positive")
        self.max_gap_s = max_gap_s
        self.watermark = NEVER
        self.last_ts = np.full(0, NEVER, dtype=np.int64)
        self.last_cell = np.zeros(0, dtype=np.int64)
        self.open = np.zeros(0, dtype=bool)

    def reserve(self, persons: int) -> None:
        """Make room for person numbers below `persons`."""
        have = len(self.last_ts)
        if persons <= have:
            return
        size = max(persons, 2 * have, 1024)
        self.last_ts = np.concatenate([self.last_ts, np.full(size - have, NEVER, dtype=np.int64)])
        self.last_cell = np.concatenate([self.last_cell, np.zeros(size - have, dtype=np.int64)])
        self.open = np.concatenate([self.open, np.zeros(size - have, dtype=bool)])

    def in_order(self, person: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Which pings (sorted by person, ts, one per instant) can take the fast path.

        A person's pings are all in order if they come after the person's last ping,
        and do not cut short a stay already closed at its cap.
        """
        first = np.ones(len(person), dtype=bool)
        first[1:] = person[1:] != person[:-1]
        last = self.last_ts[person[first]]
        fine = (ts[first] > last) & (
            self.open[person[first]] | (last == NEVER) | (ts[first] >= last + self.max_gap_s)
        )
        return np.repeat(fine, np.diff(np.append(np.flatnonzero(first), len(person))))

    def advance(self, person: np.ndarray, ts: np.ndarray, cell: np.ndarray) -> Rows:
        """Apply in-order pings (sorted by person, ts); the stays they close."""
        if len(person) == 0:
            return Rows.empty()
        first = np.ones(len(person), dtype=bool)
        first[1:] = person[1:] != person[:-1]
        prev_ts = np.where(first, self.last_ts[person], np.roll(ts, 1))
        prev_cell = np.where(first, self.last_cell[person], np.roll(cell, 1))
        closes = np.where(first, self.open[person], True)
        stays = Rows(
            prev_cell[closes],
            person[closes],
            prev_ts[closes],
            np.minimum(ts[closes], prev_ts[closes] + self.max_gap_s),
        )
        final = np.append(first[1:], True)
        touched = person[final]
        self.last_ts[touched] = ts[final]
        self.last_cell[touched] = cell[final]
        self.open[touched] = True
        return Rows.concat([stays, self._close(touched)])

    def close_capped(self, watermark: int) -> Rows:
        """Move the watermark; the open stays whose cap it passed, now closed."""
        self.watermark = max(self.watermark, watermark)
        return self._close(np.flatnonzero(self.open))

    def _close(self, persons: np.ndarray) -> Rows:
        persons = persons[self.open[persons]]
        capped = persons[self.last_ts[persons] + self.max_gap_s <= self.watermark]
        self.open[capped] = False
        start = self.last_ts[capped]
        return Rows(self.last_cell[capped].copy(), capped.astype(np.int64), start.copy(), start + self.max_gap_s)

    def next_cap(self) -> int | None:
        """The earliest moment a watermark would close an open stay (None when none is open)."""
        if not self.open.any():
            return None
        return int(self.last_ts[self.open].min()) + self.max_gap_s

    def pending(self, person: int) -> tuple[int, int] | None:
        """The open last ping of a person, (ts, cell), if any."""
        return (int(self.last_ts[person]), int(self.last_cell[person])) if self.open[person] else None

    def restate(self, person: int, last_ts: int, last_cell: int, last_open: bool) -> None:
        """Record a person's last ping after their stays were recomputed (the slow path)."""
        self.last_ts[person] = last_ts
        self.last_cell[person] = last_cell
        self.open[person] = last_open


def restate(
    tracker: StayTracker, history: Rows, person: np.ndarray, ts: np.ndarray, cell: np.ndarray
) -> tuple[Rows, Rows]:
    """The slow path for out-of-order pings: recompute those persons' stays.

    `history` holds the closed stays known for these persons (each stay starts at
    one of their pings, so with the tracker's open ping it is their ping history).
    Returns the stays to add and the stays to withdraw; updates the tracker.
    """
    added: list[Rows] = []
    withdrawn: list[Rows] = []
    for who in np.unique(person).tolist():
        mine = history.take(np.flatnonzero(history.owner == who))
        pings = dict(zip(mine.start.tolist(), mine.cell.tolist()))
        pending = tracker.pending(who)
        if pending is not None:
            pings[pending[0]] = pending[1]
        for t, c in zip(ts[person == who].tolist(), cell[person == who].tolist()):
            pings[t] = max(c, pings.get(t, c))
        times = np.array(sorted(pings), dtype=np.int64)
        cells = np.array([pings[t] for t in times.tolist()], dtype=np.int64)
        known = stays_from_pings(who, times, cells, tracker.max_gap_s, tracker.watermark)
        tracker.restate(who, int(times[-1]), int(cells[-1]), known.last_open)
        old = list(zip(mine.cell.tolist(), mine.start.tolist(), mine.end.tolist()))
        new = list(zip(known.stays.cell.tolist(), known.stays.start.tolist(), known.stays.end.tolist()))
        old_set, new_set = set(old), set(new)
        withdrawn.append(mine.take(np.array([stay not in new_set for stay in old], dtype=bool)))
        added.append(known.stays.take(np.array([stay not in old_set for stay in new], dtype=bool)))
    return Rows.concat(added), Rows.concat(withdrawn)


class StayStage:
    """The person-keyed half of presence detection: pings in, stay changes out.

    Late pings need the person's earlier stays (`restate`). A single-process
    `ContactEngine` passes its own cell-keyed stays table as `history` and stores
    what this returns there itself, so nothing is kept twice; a person-keyed stage
    of a partitioned stream passes nothing and the stage keeps its own history.
    """

    def __init__(self, max_gap_s: int, history: CellTable | None = None) -> None:
        self.tracker = StayTracker(max_gap_s)
        self._keeps_history = history is None
        self.history = CellTable() if history is None else history

    def ingest(self, person: np.ndarray, ts: np.ndarray, cell: np.ndarray) -> tuple[Rows, Rows]:
        """Pings sorted by (person, ts) -> (stays closed or added, stays withdrawn)."""
        self.tracker.reserve(int(person.max()) + 1 if len(person) else 0)
        once = dedupe_pings(person, ts, cell)
        person, ts, cell = person[once], ts[once], cell[once]
        fast = self.tracker.in_order(person, ts)
        if fast.all():
            return self._kept(self.tracker.advance(person, ts, cell), Rows.empty())
        closed = self.tracker.advance(person[fast], ts[fast], cell[fast])
        late = ~fast
        history = self.history.rows_of(np.unique(person[late]))
        added, withdrawn = restate(self.tracker, history, person[late], ts[late], cell[late])
        return self._kept(Rows.concat([closed, added]), withdrawn)

    def advance(self, watermark: int) -> Rows:
        """The open stays whose cap the watermark passed, now closed."""
        return self._kept(self.tracker.close_capped(watermark), Rows.empty())[0]

    def expire(self, cutoff: int) -> None:
        """Forget history that ended at or before `cutoff` (when the stage keeps its own)."""
        if self._keeps_history:
            self.history.drop_ended(cutoff)

    def _kept(self, added: Rows, withdrawn: Rows) -> tuple[Rows, Rows]:
        if self._keeps_history:
            for c, owner, start in zip(withdrawn.cell.tolist(), withdrawn.owner.tolist(), withdrawn.start.tolist()):
                self.history.withdraw(c, owner, start)
            self.history.append(added)
        return added, withdrawn
