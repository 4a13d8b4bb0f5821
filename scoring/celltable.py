"""A table of timed rows keyed by H3 cell: the storage under the presence index.

Each row is `(cell, owner, start, end)`: a person's stay in a cell, or a source's
(case or designated area) infectious presence in a cell. Rows are kept in a few
runs sorted by (cell, start), log-structured: the batches appended between two
reads become a run, and runs of similar size are merged, so there are O(log n) runs and appending costs O(log n)
amortised per row. A lookup of many (cell, time range) pairs is a few
`searchsorted` calls per run and costs the rows found, however long the table's
history; so does a lookup by owner, once a run is indexed by owner. A partition of
a stream holds the rows of the cells it owns in the same structure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DELETED = -1
"""Owner of a row that was withdrawn (a stay corrected by a late ping)."""


@dataclass(slots=True)
class Rows:
    """Columns of rows; all int64 arrays of one length."""

    cell: np.ndarray
    owner: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.cell)

    def take(self, index: np.ndarray) -> "Rows":
        return Rows(self.cell[index], self.owner[index], self.start[index], self.end[index])

    @staticmethod
    def empty() -> "Rows":
        nothing = np.empty(0, dtype=np.int64)
        return Rows(nothing, nothing, nothing, nothing)

    @staticmethod
    def concat(parts: list["Rows"]) -> "Rows":
        if not parts:
            return Rows.empty()
        return Rows(
            np.concatenate([p.cell for p in parts]),
            np.concatenate([p.owner for p in parts]),
            np.concatenate([p.start for p in parts]),
            np.concatenate([p.end for p in parts]),
        )


def expand_ranges(lo: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo, lo+count): (range number, position) of every member, vectorised."""
    total = int(count.sum())
    which = np.repeat(np.arange(len(lo)), count)
    first = np.cumsum(count) - count
    return which, np.arange(total) - np.repeat(first, count) + lo[which]


_OFFSET_BITS = 32
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1


_DAY_S = 86_400
"""Runs are merged only within an event-time day of their latest starts (see `CellTable.append`)."""

_FANOUT = 4
"""Runs of a size merged at once. Merging pairs, a row was merged about eight times in its day
(a merge costs each row the same, whatever the count); in fours, four, for a few more runs to search."""

_PENDING_ROWS = 1 << 16
"""Rows appended wait unsorted (32 bytes each, twice a sorted row) until this many, at most."""

_SCAN_OWNERS = 8
"""Up to this many owners, a run not yet indexed by owner is scanned rather than indexed."""


def sorted_union(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of sorted arrays of distinct values, sorted (`np.union1d`'s answer).

    numpy 2.4's `np.union1d` (`np.unique` without an inverse) hashes, which on H3 cells' wide
    values took 0.8 s for 300,000 of them; merging the sorted runs takes milliseconds.
    """
    values = np.concatenate(arrays)
    values.sort(kind="stable")  # sorted runs back to back: timsort merges them in linear time
    first = np.ones(len(values), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


_INT32_MAX = int(np.iinfo(np.int32).max)


def _length_dtype(longest: int) -> type:
    return np.int32 if longest <= _INT32_MAX else np.int64


@dataclass(slots=True)
class _Run:
    """Rows sorted by (cell, start), stored compactly and searchable on both at once.

    A row is kept as `key` = (rank of its cell among the run's distinct `cells`) << 32
    | (start - base), its owner (int32) and its length; cell, start and end are
    rebuilt for the few rows a search returns. Keys sort like the rows, so one
    `searchsorted` finds the rows of a cell that start in a time range, and
    `longest` bounds the length, so rows overlapping [a, b) start after a - longest.
    Stays cost 16 bytes each, 20 once the run has been searched by owner.
    """

    cells: np.ndarray
    key: np.ndarray
    owner: np.ndarray
    length: np.ndarray
    base: int
    longest: int
    latest: int
    """The latest start (at least: rows dropped since may have held it)."""
    by_owner: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """Built on the first search by owner: distinct owners, where each one's rows
    begin in `order`, and `order` (row positions sorted by owner)."""

    @staticmethod
    def of(rows: Rows) -> "_Run":
        base = int(rows.start.min())
        if int(rows.start.max()) - base > _OFFSET_MASK:
            raise ValueError("rows of one run must start within 136 years of each other")
        cells, rank = np.unique(rows.cell, return_inverse=True)
        key = (rank.astype(np.int64) << _OFFSET_BITS) | (rows.start - base)
        order = np.argsort(key)
        length = rows.end - rows.start
        longest = int(length.max())
        return _Run(
            cells, key[order], rows.owner[order].astype(np.int32), length[order].astype(_length_dtype(longest)),
            base, longest, int(rows.start.max()),
        )

    @staticmethod
    def merge(runs: "list[_Run]") -> "_Run":
        """One run of the rows of `runs` (whose starts fit one run, see `mergeable`)."""
        cells = sorted_union(*(run.cells for run in runs))
        base = min(run.base for run in runs)
        if not _Run.mergeable(runs):
            raise ValueError("rows of one run must start within 136 years of each other")

        def rekey(run: "_Run") -> np.ndarray:
            rank = np.searchsorted(cells, run.cells)[run.key >> _OFFSET_BITS]
            return (rank << _OFFSET_BITS) | ((run.key & _OFFSET_MASK) + (run.base - base))

        key = np.concatenate([rekey(run) for run in runs])
        # Sorted runs back to back: timsort ("stable") merges them in about linear time.
        order = np.argsort(key, kind="stable")
        longest = max(run.longest for run in runs)
        return _Run(
            cells, key[order], np.concatenate([run.owner for run in runs])[order],
            np.concatenate([run.length for run in runs]).astype(_length_dtype(longest), copy=False)[order], base,
            longest, max(run.latest for run in runs),
        )

    @staticmethod
    def mergeable(runs: "list[_Run]") -> bool:
        """True when the rows of all fit one run (their starts within 136 years)."""
        return max(run.latest for run in runs) - min(run.base for run in runs) <= _OFFSET_MASK

    def __len__(self) -> int:
        return len(self.key)

    @property
    def nbytes(self) -> int:
        index = sum(a.nbytes for a in self.by_owner) if self.by_owner is not None else 0
        return self.cells.nbytes + self.key.nbytes + self.owner.nbytes + self.length.nbytes + index

    def of_owners(self, owners: np.ndarray) -> np.ndarray:
        """Positions of the live rows of `owners` (sorted, distinct)."""
        if self.by_owner is None and len(owners) <= _SCAN_OWNERS:
            # A new case asks for one person: a scan costs a pass over the run, the index a sort
            # of it, and runs merge (dropping the index) between cases in a growing city.
            # Compared with each owner as a Python int: one pass over the int32 owners each, where
            # `np.isin` made several, and a numpy int64 would have widened them first.
            found = np.zeros(len(self.owner), dtype=bool)
            for owner in owners.tolist():
                found |= self.owner == owner
            return np.flatnonzero(found)
        if self.by_owner is None:
            order = np.argsort(self.owner, kind="stable").astype(np.int32)
            distinct, first = np.unique(self.owner[order], return_index=True)
            self.by_owner = (distinct, np.append(first, len(order)).astype(np.int64), order)
        distinct, begins, order = self.by_owner
        at = np.minimum(np.searchsorted(distinct, owners), len(distinct) - 1)
        asked = at[distinct[at] == owners]
        _, position = expand_ranges(begins[asked], begins[asked + 1] - begins[asked])
        position = order[position]
        # Withdrawn rows keep their place in the index but no longer carry the owner.
        return position[np.isin(self.owner[position], owners)]

    def starts(self, position: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.base + (self.key[position] & _OFFSET_MASK)

    def ends(self) -> np.ndarray:
        return self.starts() + self.length

    def rows(self, position: np.ndarray) -> Rows:
        start = self.starts(position)
        return Rows(
            self.cells[self.key[position] >> _OFFSET_BITS],
            self.owner[position].astype(np.int64),
            start,
            start + self.length[position],
        )

    def keep(self, mask: np.ndarray) -> "_Run":
        # A subset of sorted rows is still sorted, and its ranks still increase.
        return _Run(
            self.cells, self.key[mask], self.owner[mask], self.length[mask], self.base, self.longest, self.latest
        )

    def find(self, cells: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row position) of rows in `cells` that may overlap [start, end)."""
        rank = np.searchsorted(self.cells, cells)
        asked = np.flatnonzero(self.cells[np.minimum(rank, len(self.cells) - 1)] == cells)
        rank = rank[asked] << _OFFSET_BITS
        since = np.clip(start[asked].astype(np.float64) - self.longest - self.base, 0, _OFFSET_MASK).astype(np.int64)
        until = np.clip(end[asked].astype(np.float64) - self.base, 0, _OFFSET_MASK).astype(np.int64)
        lo = np.searchsorted(self.key, rank | since)
        hi = np.searchsorted(self.key, rank | until)
        which, position = expand_ranges(lo, hi - lo)
        return asked[which], position


def _eras(rows: Rows) -> list[Rows]:
    """`rows` in parts whose starts lie within 136 years each, as a run needs (one part, nearly always).

    Event-time limits keep times decades apart at most; with them switched off, rows
    from far apart years go to runs of their own instead of failing, and such runs are
    never merged (`CellTable.append`).
    """
    if int(rows.start.max()) - int(rows.start.min()) <= _OFFSET_MASK:
        return [rows]
    order = np.argsort(rows.start, kind="stable")
    starts = rows.start[order]
    parts = []
    first = 0
    while first < len(order):
        last = int(np.searchsorted(starts, starts[first] + _OFFSET_MASK, side="right"))
        parts.append(rows.take(order[first:last]))
        first = last
    return parts


class CellTable:
    """Rows kept sorted by (cell, start) in log-structured runs."""

    def __init__(self) -> None:
        self._sorted: list[_Run] = []
        self._pending: list[Rows] = []
        self._pending_rows = 0

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the runs."""
        return sum(r.nbytes for r in self.runs)

    @property
    def runs(self) -> list[_Run]:
        """The runs, with the rows appended since the last read sorted in."""
        if self._pending:
            self._sort_pending()
        return self._sorted

    def append(self, rows: Rows) -> None:
        """Add rows (any order).

        They wait to be sorted into runs until the table is next read, or `_PENDING_ROWS` wait:
        the stays table is read only when a case comes, so a run is made of a dozen ticks'
        stays, not of each tick's two appends, and every row is merged fewer times.
        """
        if len(rows) == 0:
            return
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= _PENDING_ROWS:
            self._sort_pending()

    def _sort_pending(self) -> None:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        # Consecutive appends of one day (of their latest start) make one run, as merging them would.
        days = [int(rows.start.max()) // _DAY_S for rows in pending]
        first = 0
        for end in range(1, len(pending) + 1):
            if end == len(pending) or days[end] != days[first]:
                self._add(Rows.concat(pending[first:end]))
                first = end

    def _add(self, rows: Rows) -> None:
        for part in _eras(rows):
            self._sorted.append(_Run.of(part))
            # A day's runs stop growing once the day is over: rows are mostly appended in time order and
            # kept for the rules' look-back (two weeks), so merging across days re-sorted every row of
            # the whole table about ten times, and a lookup skips the days its queries cannot reach.
            while self._merge_due():
                merged = _Run.merge(self._sorted[-_FANOUT:])
                del self._sorted[-_FANOUT:]
                self._sorted.append(merged)

    def _merge_due(self) -> bool:
        """The newest `_FANOUT` runs are of a size (the oldest at most twice the newest) and of one day."""
        last = self._sorted[-_FANOUT:]
        return (
            len(last) == _FANOUT and len(last[0]) <= 2 * len(last[-1])
            and len({run.latest // _DAY_S for run in last}) == 1 and _Run.mergeable(last)
        )

    def lookup(self, cells: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, Rows]:
        """Live rows in `cells[i]` that may overlap [start[i], end[i]): (i of each, the rows).

        Every row that overlaps is returned; a few that only come close may be too,
        so callers compute the exact overlap.
        """
        found: list[tuple[np.ndarray, Rows]] = []
        if len(cells) == 0:
            return np.empty(0, dtype=np.int64), Rows.empty()
        earliest, latest = int(start.min()), int(end.max())
        for run in self.runs:
            if run.latest + run.longest <= earliest or run.base >= latest:
                continue  # every row of the run ends before the queries begin, or starts after they end
            query, position = run.find(cells, start, end)
            if len(position):
                found.append((query, run.rows(position)))
        if not found:
            return np.empty(0, dtype=np.int64), Rows.empty()
        query = np.concatenate([q for q, _ in found])
        rows = Rows.concat([r for _, r in found])
        live = rows.owner != DELETED
        return query[live], rows.take(live)

    def rows_of(self, owners: np.ndarray, start: int | None = None, end: int | None = None) -> Rows:
        """All live rows of the given owners; with `start` and `end`, those that may overlap [start, end).

        Every row that overlaps is returned then, and a few that only come close may be too
        (callers clip): runs whose rows all end by `start` or begin at `end` are not searched.
        A case's stays are looked up for its infectious window, which opens two days before its
        sample under the default rules: searching the whole look-back (two weeks) for each case
        was 9% of an outbreak city's replay. The first search of a run by owner indexes it
        (4 bytes a row); runs change rarely once large, so later searches cost the rows found.
        """
        owners = np.unique(np.asarray(owners, dtype=np.int64))
        runs = [
            run for run in self.runs
            if (start is None or run.latest + run.longest > start) and (end is None or run.base < end)
        ]
        return Rows.concat([run.rows(run.of_owners(owners)) for run in runs])

    def withdraw(self, cell: int, owner: int, start: int) -> None:
        """Mark the row (cell, owner, start) deleted; it is found by search, the order is kept."""
        for run in self.runs:
            _, position = run.find(np.array([cell]), np.array([start]), np.array([start + 1]))
            hit = position[(run.owner[position] == owner) & (run.starts(position) == start)]
            run.owner[hit] = DELETED

    def withdraw_owner(self, owner: int) -> None:
        """Delete every row of one owner."""
        self._keep(lambda run: run.owner != owner)

    def drop_ended(self, cutoff: int) -> None:
        """Delete rows that ended at or before `cutoff` (and withdrawn rows)."""
        # Runs are mostly a day's rows: only the day the cutoff falls in needs the rows' ends.
        self._sorted = [run for run in self.runs if run.latest + run.longest > cutoff]
        self._keep(lambda run: (run.owner != DELETED) & ((run.ends() > cutoff) if run.base <= cutoff else True))

    def _keep(self, predicate: Callable[[_Run], np.ndarray]) -> None:
        runs = []
        for run in self.runs:
            kept = predicate(run)
            if kept.all():
                runs.append(run)  # unchanged, and so is its index by owner
            elif kept.any():
                runs.append(run.keep(kept))
        self._sorted = runs
