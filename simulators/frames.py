"""Events as columns: numpy arrays of codes and epoch seconds, turned into text late.

Two frame shapes keep memory low: pings (the bulk, eight columns) and records
(visits, test results and area designations, a few thousand rows). Every string
field is a small integer code into one of the vocabularies below or into the
city's pseudonyms, facilities and districts; -1 (or NaN) means the field is absent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Frame = dict[str, np.ndarray]

TYPES: tuple[str, ...] = ("ping", "visit", "test_result", "area_risk")
PING, VISIT, TEST_RESULT, AREA_RISK = range(4)
SOURCES: tuple[str, ...] = ("cell", "gps", "venue")
CELL, GPS, VENUE_SCAN = range(3)
VISIT_KINDS: tuple[str, ...] = ("fever_clinic", "diagnosis", "recovery")
FEVER_CLINIC, DIAGNOSIS, RECOVERY = range(3)
TESTS: tuple[str, ...] = ("pcr", "antigen")
PCR, ANTIGEN = range(2)
RESULTS: tuple[str, ...] = ("positive", "negative")
POSITIVE, NEGATIVE = range(2)
LEVELS: tuple[str, ...] = ("low", "medium", "high")
LOW, MEDIUM, HIGH = range(3)
NO_FAULT = 0

PING_COLUMNS: dict[str, type] = {
    "serial": np.int64,
    "ts": np.int64,
    "arrival": np.int64,
    "person": np.int32,
    "lat": np.float64,
    "lon": np.float64,
    "accuracy_m": np.float64,
    "source": np.int8,
    "fault": np.int8,
}
RECORD_COLUMNS: dict[str, type] = {
    "serial": np.int64,
    "type": np.int8,
    "ts": np.int64,
    "arrival": np.int64,
    "person": np.int32,
    "facility": np.int16,
    "kind": np.int8,
    "sampled_at": np.int64,
    "test": np.int8,
    "result": np.int8,
    "area": np.int16,
    "level": np.int8,
    "valid_until": np.int64,
    "fault": np.int8,
}


def empty(columns: dict[str, type]) -> Frame:
    """A frame with no rows."""
    return {name: np.empty(0, dtype=dtype) for name, dtype in columns.items()}


def size(frame: Frame) -> int:
    """Number of rows."""
    return int(frame["ts"].size)


def take(frame: Frame, rows: np.ndarray) -> Frame:
    """The rows selected by an index or boolean array."""
    return {name: column[rows] for name, column in frame.items()}


def concat(frames: Sequence[Frame], columns: dict[str, type]) -> Frame:
    """Rows of all frames, in order."""
    if not frames:
        return empty(columns)
    return {
        name: np.concatenate([f[name] for f in frames]).astype(dtype, copy=False) for name, dtype in columns.items()
    }


def records_from_rows(rows: list[dict[str, int]]) -> Frame:
    """A records frame from row dicts; fields a row lacks are absent (-1)."""
    frame = {}
    for name, dtype in RECORD_COLUMNS.items():
        frame[name] = np.array([row.get(name, -1 if name != "fault" else NO_FAULT) for row in rows], dtype=dtype)
    return frame


class Serials:
    """The running count behind event ids: each event gets the next number once."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> np.ndarray:
        """`count` fresh serial numbers."""
        start = self.next
        self.next += count
        return np.arange(start, start + count, dtype=np.int64)
