"""Events wait here until they arrive, and leave in arrival order.

Each simulated day adds its events; releasing up to the day's end hands over those
that have arrived by then, sorted by arrival time (ties keep generation order), and
keeps the stragglers (buffered pings, late faults) for a later release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.frames import PING_COLUMNS, RECORD_COLUMNS, Frame, concat, size, take


@dataclass
class Arrived:
    """Pings and records, and the arrival order of those that arrived: `order` indexes
    the pings' rows then the records' rows (record row r is `size(pings) + r`). Rows
    not in `order` have not arrived yet; they are only here to spare a copy."""

    pings: Frame
    records: Frame
    order: np.ndarray

    def __len__(self) -> int:
        return int(self.order.size)

    def fault(self) -> np.ndarray:
        """The fault code of each row, in arrival order."""
        return np.concatenate([self.pings["fault"], self.records["fault"]])[self.order]


class ArrivalQueue:
    """Pending pings and records, released by arrival time."""

    def __init__(self) -> None:
        self._pings: list[Frame] = []
        self._records: list[Frame] = []

    def add(self, pings: Frame, records: Frame) -> None:
        """Queue more events."""
        self._pings.append(pings)
        self._records.append(records)

    @staticmethod
    def _split(frames: list[Frame], columns: dict[str, type], before: int | None) -> tuple[Frame, np.ndarray, Frame]:
        """The pending rows, which of them are due, and the rows kept back."""
        whole = frames[0] if len(frames) == 1 else concat([f for f in frames if size(f)], columns)
        if before is None:
            return whole, np.arange(size(whole)), take(whole, np.zeros(0, dtype=np.int64))
        due = whole["arrival"] < before
        return whole, np.flatnonzero(due), take(whole, ~due)

    def release(self, before: int | None) -> Arrived:
        """Everything arrived before `before` (everything left when None), in arrival order."""
        pings, due_pings, kept_pings = self._split(self._pings, PING_COLUMNS, before)
        records, due_records, kept_records = self._split(self._records, RECORD_COLUMNS, before)
        self._pings, self._records = [kept_pings], [kept_records]
        rows = np.concatenate([due_pings, due_records + size(pings)])
        arrival = np.concatenate([pings["arrival"], records["arrival"]])[rows]
        return Arrived(pings, records, rows[np.argsort(arrival, kind="stable")])
