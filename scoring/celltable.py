"""A table of timed rows keyed by H3 cell: the storage under the presence index.

Each row is `(cell, owner, start, end)`: a person's stay in a cell, or a source's
(case or designated area) infectious presence in a cell. Rows are kept in a few
runs sorted by cell, log-structured: a batch becomes a run, and runs of similar
size are merged, so there are O(log n) runs and appending costs O(log n) amortised
per row. A lookup of many cells is one `searchsorted` per run. A partition of the
stream holds the rows of the cells it owns in the same structure.
"""

from __future__ import annotations

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

    @property
    def nbytes(self) -> int:
        return self.cell.nbytes + self.owner.nbytes + self.start.nbytes + self.end.nbytes


def expand_ranges(lo: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo, lo+count): (range number, position) of every member, vectorised."""
    total = int(count.sum())
    which = np.repeat(np.arange(len(lo)), count)
    first = np.cumsum(count) - count
    return which, np.arange(total) - np.repeat(first, count) + lo[which]


class CellTable:
    """Rows kept sorted by cell in log-structured runs."""

    def __init__(self) -> None:
        self._runs: list[Rows] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the row arrays."""
        return sum(r.nbytes for r in self._runs)

    def append(self, rows: Rows) -> None:
        """Add rows (any order)."""
        if len(rows) == 0:
            return
        self._runs.append(rows.take(np.argsort(rows.cell, kind="stable")))
        while len(self._runs) >= 2 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer = self._runs.pop()
            older = self._runs.pop()
            merged = Rows.concat([older, newer])
            self._runs.append(merged.take(np.argsort(merged.cell, kind="stable")))

    def lookup(self, cells: np.ndarray) -> tuple[np.ndarray, Rows]:
        """All live rows in any of `cells`: (index into `cells` of each, the rows)."""
        found: list[tuple[np.ndarray, Rows]] = []
        for run in self._runs:
            lo = np.searchsorted(run.cell, cells, side="left")
            hi = np.searchsorted(run.cell, cells, side="right")
            query, position = expand_ranges(lo, hi - lo)
            if len(position):
                found.append((query, run.take(position)))
        if not found:
            return np.empty(0, dtype=np.int64), Rows.empty()
        query = np.concatenate([q for q, _ in found])
        rows = Rows.concat([r for _, r in found])
        live = rows.owner != DELETED
        return query[live], rows.take(live)

    def rows_of(self, owners: np.ndarray) -> Rows:
        """All live rows of the given owners."""
        return Rows.concat([run.take(np.isin(run.owner, owners)) for run in self._runs])

    def withdraw(self, cell: int, owner: int, start: int) -> None:
        """Mark the row (cell, owner, start) deleted; rows stay sorted, so it is found by search."""
        for run in self._runs:
            lo, hi = np.searchsorted(run.cell, [cell, cell + 1])
            hit = np.flatnonzero((run.owner[lo:hi] == owner) & (run.start[lo:hi] == start))
            run.owner[lo + hit] = DELETED

    def withdraw_owner(self, owner: int) -> None:
        """Delete every row of one owner."""
        self._keep(lambda run: run.owner != owner)

    def drop_ended(self, cutoff: int) -> None:
        """Delete rows that ended at or before `cutoff` (and withdrawn rows)."""
        self._keep(lambda run: (run.end > cutoff) & (run.owner != DELETED))

    def _keep(self, predicate) -> None:
        runs = [run.take(predicate(run)) for run in self._runs]
        self._runs = [run for run in runs if len(run)]
