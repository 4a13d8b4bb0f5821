"""Reading a file of events: JSON lines (a path, or `-` for stdin) or Parquet with the contract's columns.

Malformed lines are skipped and reported with their line numbers, events beyond the
limits are skipped as intake would dead-letter them, and duplicate event ids are kept
once (the first copy). Pings come out batch by batch as columns (`Pings`), the other
events as models (`Inputs`); `scoring.replay` feeds them to the core in event-time order.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event
from scoring.limits import EventLimits, latest_accepted, limit_breach, time_breach
from scoring.pseudonyms import Coded, Roster
from scoring.timeutil import to_epoch


Progress = Callable[[int], None]
"""Called with how much input has been read so far: bytes of JSONL, rows of Parquet."""


@dataclass(frozen=True)
class Malformed:
    """A line (or Parquet row, 1-based) that is not a valid v1 event."""

    line: int
    reason: str


@dataclass(frozen=True)
class PingBatch:
    """Valid pings of a stretch of the input, in arrival order."""

    codes: np.ndarray
    """Persons, as codes into `roster`."""
    roster: Roster
    ts: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    order: np.ndarray
    """Arrival position of each ping, to break ties with other events deterministically."""
    later: int | None
    """No ping of a later batch is earlier than this (None: no ping follows)."""

    @property
    def persons(self) -> np.ndarray:
        """Pseudonyms (object array)."""
        return Coded(self.codes, self.roster).names()

_NONE = int(np.iinfo(np.int64).max)
"""The least ping time of a stretch without pings."""

_Held = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Pings held as columns: (person code, ts, lat, lon, arrival position)."""


@dataclass
class Pings:
    """The valid pings of an input, given batch by batch in arrival order, as often as asked.

    Pings decoded one by one (JSON lines, odd Parquet rows) are held as columns,
    persons as codes into `roster` (as are the persons of every batch given). The
    pings of a Parquet file that its columns give directly are not held: each pass
    reads the file again, taking the rows reading kept (one bit a row), so memory
    follows a batch, not the file. With the least time of each stretch of input,
    replay knows how far event time is complete.
    """

    roster: Roster
    held: _Held
    stretches: list[tuple[int, int]]
    """(last position, least ping time) of each stretch of input, in order."""
    file: Path | None = None
    kept: np.ndarray | None = None
    """Packed bits (little bit order) by row of `file`: the row is a ping to replay."""

    def batches(self) -> Iterator[PingBatch]:
        ends = np.array([end for end, _ in self.stretches], dtype=np.int64)
        floors = np.array([*(floor for _, floor in self.stretches), _NONE], dtype=np.int64)
        least = np.minimum.accumulate(floors[::-1])[::-1]
        for last, (person, ts, lat, lon, order) in self._parts():
            # A stretch not wholly given yet may still hold an earlier ping.
            later = int(least[int(np.searchsorted(ends, last, side="right"))])
            yield PingBatch(person, self.roster, ts, lat, lon, order, None if later == _NONE else later)

    def _parts(self) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """(last position, columns) of successive stretches."""
        held = self.held
        if self.file is None or self.kept is None or not self.kept.any():
            first = 0
            for last, _ in self.stretches:
                end = int(np.searchsorted(held[4], last, side="right"))
                yield last, tuple(column[first:end] for column in held)
                first = end
            return
        from scoring.columns import PersonCoder, ping_columns

        coder = PersonCoder(self.roster)
        for first, batch, rows in self._kept_rows(_PING_COLUMNS):
            end = first + batch.num_rows
            person, ts, lat, lon = ping_columns(batch, rows, coder)
            lo, hi = (int(at) for at in np.searchsorted(held[4], [first, end], side="right"))
            yield end, tuple(np.concatenate([mine, column[lo:hi]])
                             for mine, column in zip((person, ts, lat, lon, rows + first + 1), held))

    def persons(self) -> set[str]:
        """Every person a ping names; of a Parquet file only the person column is read again."""
        found = {self.roster.names[code] for code in np.unique(self.held[0]).tolist()}
        if self.file is not None and self.kept is not None and self.kept.any():
            from scoring.columns import PersonNotes

            # Noted, not coded: asking who is named must not change the roster's codes.
            noted = PersonNotes()
            for _, batch, rows in self._kept_rows(["person"]):
                noted.note(batch, rows)
            found |= noted.named()
        return found

    def _kept_rows(self, columns: list[str]) -> Iterator[tuple[int, pa.RecordBatch, np.ndarray]]:
        """(rows before it, batch of `columns`, positions in it of the pings to replay) of each batch of `file`."""
        assert self.file is not None and self.kept is not None
        first = 0
        for batch in _batches(self.file, columns):
            end = first + batch.num_rows
            bits = np.unpackbits(self.kept[first // 8: -(-end // 8)], bitorder="little")
            yield first, batch, np.flatnonzero(bits[first % 8: first % 8 + batch.num_rows])
            first = end


_PING_COLUMNS = ["person", "ts", "lat", "lon"]


@dataclass
class Inputs:
    """Valid events of a file: pings batch by batch (`pings`), the rest as models."""

    pings: Pings
    others: list[tuple[int, int, Visit | TestResult | AreaRisk]]
    """(event time, arrival position, event)."""
    ping_count: int
    malformed: list[Malformed] = field(default_factory=list)
    duplicates: int = 0

    @property
    def count(self) -> int:
        return self.ping_count + len(self.others)

    def persons(self) -> set[str]:
        """Every person a valid event names (a ping, a visit, a test result)."""
        persons = self.pings.persons()
        persons.update(event.person for _, _, event in self.others if not isinstance(event, AreaRisk))
        return persons

    def span(self) -> tuple[int, int] | None:
        """(first, last) time of the valid events; None when there are none."""
        times = [(int(batch.ts.min()), int(batch.ts.max())) for batch in self.pings.batches() if len(batch.ts)]
        times += [(moment, moment) for moment, _, _ in self.others]
        if not times:
            return None
        return min(first for first, _ in times), max(last for _, last in times)


_BATCH = 500_000
"""Parquet rows read at a time; JSON lines are a stretch of input until this many pings."""

_OTHER, _HELD, _READ = 0, 1, 2
"""What a valid event is: not a ping, a ping held as columns, a ping read again from the file."""


@dataclass
class _Stretch:
    """The valid events of a stretch of input in arrival order, as far as de-duplication needs them."""

    base: int
    """The least position in the stretch."""
    offsets: np.ndarray
    """Position of each event, less `base` (uint32: a stretch is far shorter than 4 G rows)."""
    hashes: np.ndarray
    kinds: np.ndarray
    ids: pa.Array | None
    """The ids themselves when held (JSON lines); None: they are read again from the file."""


class _Collector:
    """Checks decoded events against the limits and finds repeated event ids, first copy kept.

    Events come in stretches (a Parquet batch, or JSON lines up to `_BATCH` pings):
    pings given as columns, or any event one by one. Of each valid event only the 64-bit
    hash of its id and its position are kept (and the id, for JSON lines), so repeats
    are found once, over the whole input in arrival order, in 13 bytes an event (hash, offset, kind).
    """

    def __init__(self, limits: EventLimits, now: int | None, hold_ids: bool) -> None:
        self.limits = limits
        self.now = now
        self.hold_ids = hold_ids
        self.malformed: list[Malformed] = []
        self.others: list[tuple[int, int, Any]] = []
        self._stretches: list[_Stretch] = []
        self._floors: list[tuple[int, int]] = []
        self._read: list[tuple[pa.Array, np.ndarray, np.ndarray]] = []
        self._singles: list[tuple[int, str, int]] = []
        self._pings: list[Ping] = []
        self._ping_positions: list[int] = []
        self.roster = Roster()
        self._held: list[_Held] = []

    def add(self, position: int, event: Ping | Visit | TestResult | AreaRisk) -> None:
        """An event decoded on its own (pings among them are held as columns)."""
        breach = limit_breach(event, self.limits, self.now)
        if breach is not None:
            self.malformed.append(Malformed(position, breach.reason))
            return
        if isinstance(event, Ping):
            self._pings.append(event)
            self._ping_positions.append(position)
            self._singles.append((position, event.event_id, _HELD))
        else:
            self.others.append((to_epoch(event.ts), position, event))
            self._singles.append((position, event.event_id, _OTHER))

    @property
    def pending_pings(self) -> int:
        return len(self._pings)

    def add_pings(self, ids: pa.Array, ts: np.ndarray, order: np.ndarray) -> None:
        """Valid pings read as columns (ids, times, positions), to be read again from the file."""
        out = (ts < self.limits.earliest) | (ts > latest_accepted(self.limits, self.now))
        for row, seconds in zip(order[out].tolist(), ts[out].tolist()):
            breach = time_breach("ts", seconds, self.limits, self.now)
            assert breach is not None  # `out` is the same test, on the whole column
            self.malformed.append(Malformed(row, breach.reason))
        self._read.append((ids.filter(pa.array(~out)) if out.any() else ids, ts[~out], order[~out]))

    def end_stretch(self, last: int) -> None:
        """The events added since the last call were a stretch ending at position `last`."""
        pings, self._pings = self._pings, []
        held_ts = np.array([to_epoch(ping.ts) for ping in pings], dtype=np.int64)
        if pings:
            self._held.append((
                self.roster.codes(ping.person for ping in pings).astype(np.int32),
                held_ts,
                np.array([ping.lat for ping in pings], dtype=np.float64),
                np.array([ping.lon for ping in pings], dtype=np.float64),
                np.array(self._ping_positions, dtype=np.int64),
            ))
        self._ping_positions = []
        read, self._read = self._read, []
        singles, self._singles = self._singles, []
        floors = [int(ts.min()) for _, ts, _ in read if len(ts)] + ([int(held_ts.min())] if len(held_ts) else [])
        self._floors.append((last, min(floors, default=_NONE)))
        ids = pa.concat_arrays([*(ids.cast(pa.large_string()) for ids, _, _ in read),
                                pa.array([event_id for _, event_id, _ in singles], type=pa.large_string())])
        if len(ids) == 0:
            return
        positions = np.concatenate([np.empty(0, dtype=np.int64), *(order for _, _, order in read),
                                    np.array([position for position, _, _ in singles], dtype=np.int64)])
        kinds = np.concatenate([np.full(sum(len(order) for _, _, order in read), _READ, dtype=np.int8),
                                np.array([kind for _, _, kind in singles], dtype=np.int8)])
        arrival = np.argsort(positions, kind="stable")
        ids, positions, kinds = ids.take(pa.array(arrival)), positions[arrival], kinds[arrival]
        base = int(positions[0])
        self._stretches.append(_Stretch(base, (positions - base).astype(np.uint32), _hashes(ids), kinds,
                                        ids if self.hold_ids else None))

    def inputs(self, rows: int, file: Path | None = None) -> Inputs:
        """What was read; `rows` of `file` (a Parquet file's, to read again), or none."""
        stretches, self._stretches = self._stretches, []
        bounds = np.cumsum([0, *(len(part.hashes) for part in stretches)])

        def ids_at(at: np.ndarray) -> np.ndarray:
            if self.hold_ids:
                return _strings_at([part.ids for part in stretches if part.ids is not None], at)
            which = np.searchsorted(bounds, at, side="right") - 1
            positions = np.array([stretches[w].base + int(stretches[w].offsets[i - bounds[w]])
                                  for w, i in zip(which.tolist(), at.tolist())], dtype=np.int64)
            return _ids_in(file, positions) if file is not None else np.empty(0, dtype=object)

        repeated = _repeats([part.hashes for part in stretches], ids_at)
        kept = np.zeros(rows, dtype=bool)
        held_repeated, other_repeated = [], []
        read_count = 0
        for part, first in zip(stretches, bounds.tolist()):
            again = repeated[first: first + len(part.hashes)]
            read = (part.kinds == _READ) & ~again
            kept[part.offsets[read].astype(np.int64) + part.base - 1] = True
            read_count += int(read.sum())
            held_repeated.append(again[part.kinds == _HELD])
            other_repeated.append(again[part.kinds == _OTHER])
        held = _join(self._held, np.concatenate([np.empty(0, dtype=bool), *held_repeated]))
        others_again = np.concatenate([np.empty(0, dtype=bool), *other_repeated]).tolist()
        others = [item for item, again in zip(self.others, others_again) if not again]
        pings = Pings(self.roster, held, self._floors, file,
                      np.packbits(kept, bitorder="little") if file is not None else None)
        return Inputs(pings, others, read_count + len(held[0]), sorted(self.malformed, key=lambda bad: bad.line),
                      int(repeated.sum()))


def _join(parts: list[_Held], repeated: np.ndarray) -> _Held:
    """The held pings as one set of columns, without the repeats."""
    empty = (np.int32, np.int64, np.float64, np.float64, np.int64)
    columns = tuple(np.concatenate([np.empty(0, dtype=kind), *(part[index] for part in parts)])
                    for index, kind in enumerate(empty))
    return tuple(column[~repeated] for column in columns) if repeated.any() else columns  # type: ignore[return-value]


def _ids_in(path: Path, positions: np.ndarray) -> np.ndarray:
    """The event ids of a Parquet file's rows at `positions` (1-based, increasing)."""
    found = []
    first = 0
    for batch in _batches(path, ["event_id"]):
        end = first + batch.num_rows
        here = positions[(positions > first) & (positions <= end)] - first - 1
        if len(here):
            found.append(np.asarray(batch.column(0).take(pa.array(here)).to_numpy(zero_copy_only=False), dtype=object))
        first = end
    return np.concatenate([np.empty(0, dtype=object), *found])


def _batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """A Parquet file's rows, `_BATCH` at a time (only `columns`, when given)."""
    import pyarrow.parquet as pq

    # Without pre-buffering: pyarrow keeps every pre-buffered column chunk until the file is
    # closed, 20 bytes a row on a city's file, the reading's whole peak.
    return pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=_BATCH, columns=columns)


_HASH_SLICE = 1 << 16
"""Ids hashed at a time: the padded copy of their bytes stays small whatever one id's length."""


def _hashes(ids: pa.Array) -> np.ndarray:
    """64-bit hashes of ids, from their UTF-8 bytes (a fixed function, so equal ids hash alike in every chunk).

    Computed on the Arrow buffers, eight bytes of every id at a time, rather than on a Python string
    per id: making those strings and hashing them was a tenth of reading a city. Repeats are
    confirmed on the ids themselves (`_repeats`), so the hash need only spread them well.
    """
    ids = ids.cast(pa.large_binary())
    found = np.empty(len(ids), dtype=np.uint64)
    for first in range(0, len(ids), _HASH_SLICE):
        part = ids.slice(first, _HASH_SLICE)
        _, offsets, data = part.buffers()
        offsets = np.frombuffer(offsets, dtype=np.int64, count=len(part) + 1, offset=part.offset * 8)
        lengths = np.diff(offsets)
        words = -(-int(lengths.max(initial=0)) // 8)
        padded = np.zeros((len(part), 8 * words), dtype=np.uint8)
        if data is not None:
            padded[np.arange(8 * words) < lengths[:, None]] = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]]
        hashed = lengths.astype(np.uint64) * _GOLDEN
        needed = -(-lengths // 8)
        for index, word in enumerate(padded.view(np.uint64).T):
            # An id's words only: its hash must not depend on the longest id beside it.
            live = needed > index
            if live.all():
                hashed = _mixed(hashed ^ word)
            else:
                hashed[live] = _mixed(hashed[live] ^ word[live])
        found[first:first + len(part)] = hashed
    return found


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mixed(value: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (in place): every input bit reaches every output bit."""
    value ^= value >> np.uint64(30)
    value *= np.uint64(0xBF58476D1CE4E5B9)
    value ^= value >> np.uint64(27)
    value *= np.uint64(0x94D049BB133111EB)
    value ^= value >> np.uint64(31)
    return value


def _repeats(parts: Sequence[np.ndarray], ids_at: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """True where an id was seen earlier, from the ids' hashes in arrival order, in parts.

    Only rows whose hash another row shares can be repeats; their ids (`ids_at`, given
    rows in increasing order) are compared exactly. One sorted copy of the hashes is all
    else it needs, where a dictionary of every id cost gigabytes on a city of 26 M events.
    """
    ordered = np.concatenate([np.empty(0, dtype=np.uint64), *parts])
    ordered.sort()
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    repeated = np.zeros(len(ordered), dtype=bool)
    del ordered
    if not len(shared):
        return repeated
    first = np.cumsum([0, *(len(part) for part in parts)])
    rows = np.concatenate([np.flatnonzero(pd.Series(part).isin(shared).to_numpy()) + start
                           for part, start in zip(parts, first.tolist())])
    repeated[rows] = pd.Series(ids_at(rows)).duplicated().to_numpy()
    return repeated


def _strings_at(chunks: list[pa.Array], positions: np.ndarray) -> np.ndarray:
    """The strings at `positions` of the chunks laid end to end."""
    bounds = np.cumsum([0, *(len(chunk) for chunk in chunks)])
    which = np.searchsorted(bounds, positions, side="right") - 1
    found = np.empty(len(positions), dtype=object)
    for chunk in np.unique(which).tolist():
        here = which == chunk
        found[here] = chunks[chunk].take(pa.array(positions[here] - bounds[chunk])).to_numpy(zero_copy_only=False)
    return found


def read_jsonl(
    lines: Iterator[bytes], progress: Progress | None = None, limits: EventLimits = EventLimits(), now: int | None = None
) -> Inputs:
    """Decode JSON lines (1-based numbering for reports); events beyond `limits` at clock `now` are malformed."""
    collector = _Collector(limits, now, hold_ids=True)
    consumed = 0
    number = 0
    for number, line in enumerate(lines, start=1):
        consumed += len(line)
        if progress is not None and number % 50_000 == 0:
            progress(consumed)
        if not line.strip():
            continue
        try:
            event = decode_event(line)
        except EventError as error:
            collector.malformed.append(Malformed(number, error.reason))
            continue
        collector.add(number, event)
        if collector.pending_pings >= _BATCH:
            collector.end_stretch(number)
    collector.end_stretch(number)
    if progress is not None:
        progress(consumed)
    return collector.inputs(0)


def read_parquet(
    path: Path, progress: Progress | None = None, limits: EventLimits = EventLimits(), now: int | None = None
) -> Inputs:
    """Decode a Parquet file with the contract's columns; pings are checked column-wise (limits as `read_jsonl`)."""
    from scoring.columns import PingRows

    collector = _Collector(limits, now, hold_ids=False)
    ping_rows = PingRows()
    position = 0
    for batch in _batches(path):
        ok, ts, ids = ping_rows(batch)
        rows = np.arange(position + 1, position + batch.num_rows + 1)
        collector.add_pings(ids, ts, rows[ok])
        others = np.flatnonzero(~ok)
        for index, record in zip(others.tolist(), _records(batch, others)):
            row = position + index + 1
            if isinstance(record, Exception):
                collector.malformed.append(Malformed(row, f"a value cannot be read: {record}"))
                continue
            try:
                event = decode_event(orjson.dumps(_without_nulls(record)))
            except EventError as error:
                collector.malformed.append(Malformed(row, error.reason))
                continue
            collector.add(row, event)
        position += batch.num_rows
        collector.end_stretch(position)
        if progress is not None:
            progress(position)
    return collector.inputs(position, path)


def _records(batch: pa.RecordBatch, rows: np.ndarray) -> list[dict[str, Any] | Exception]:
    """The rows of a Parquet batch as Python dicts, or the error that stops one being read.

    Taken together (a slice per row cost about as much as reading the pings); row by row
    only when some value cannot be read, so that the error names its row."""
    try:
        return batch.take(rows).to_pylist()
    except (OverflowError, ValueError):
        found: list[dict[str, Any] | Exception] = []
        for index in rows.tolist():
            try:
                found.append(batch.slice(index, 1).to_pylist()[0])
            except (OverflowError, ValueError) as error:
                found.append(error)
        return found


def _without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    # A Parquet row has every column; a field is absent where the column is null.
    cleaned = {key: value for key, value in record.items() if value is not None}
    geometry = cleaned.get("geometry")
    if isinstance(geometry, str):
        try:
            cleaned["geometry"] = orjson.loads(geometry)
        except orjson.JSONDecodeError:
            pass
    return cleaned


def input_size(source: str | Path) -> int | None:
    """How much there is to read, in the units `Progress` reports (None for stdin)."""
    if str(source) == "-":
        return None
    path = Path(source)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return path.stat().st_size


def read_events(
    source: str | Path, progress: Progress | None = None, limits: EventLimits = EventLimits(), now: int | None = None
) -> Inputs:
    """Read EVENTS: a JSONL path, `-` for stdin, or a `.parquet` path.

    Events beyond `limits` are skipped as malformed, as intake dead-letters them. A file
    has no intake clock: times later than `now` plus the limits' `ahead_s` are skipped
    when `now` is given (the wall clock of the replay, or when the file was recorded),
    and only those past `scoring.limits.LATEST` when not.
    """
    if str(source) == "-":
        return read_jsonl(iter(sys.stdin.buffer), progress, limits, now)
    path = Path(source)
    if path.suffix == ".parquet":
        return read_parquet(path, progress, limits, now)
    with open(path, "rb") as handle:
        return read_jsonl(iter(handle), progress, limits, now)
