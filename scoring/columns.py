"""Column-wise checks of ping rows in a Parquet batch, so the bulk of a file skips per-row models.

This is a fast pre-filter, not a second contract: a row passes only if it is a ping
that `scoring.events.Ping` would accept (a property test holds the two together);
every other row goes through the pydantic models, which give the precise reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.events import PING_FIELDS, PRINTABLE
from scoring.pseudonyms import Roster

T = TypeVar("T")

_PERSON = r"^[A-Za-z0-9_-]{1,64}$"
_FIRST_SECOND = -62_135_596_800
_LAST_SECOND = 253_402_300_799
"""0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z: the times RFC 3339 (and a Python datetime) can state."""
_REQUIRED = ("type", "event_id", "ts", "person", "lat", "lon", "source")
_SOURCES = pa.array(["cell", "gps", "venue"])


def _strings(column: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        return column.dictionary_decode()
    return column


def _true(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _each(column: pa.Array, test: Callable[[pa.Array], pa.Array]) -> np.ndarray:
    """Where `test` holds of a string column's values; a dictionary column's are tested once a distinct value."""
    if pa.types.is_dictionary(column.type):
        return _true(test(column.dictionary).take(column.indices))
    return _true(test(column))


def _named_validly(names: pa.Array) -> pa.Array:
    return pc.match_substring_regex(names, _PERSON)


class DictionaryMemo(Generic[T]):
    """What `work` makes of a dictionary column's dictionary, worked out again only when it changes.

    A Parquet file stores a dictionary per row group that every batch read from it repeats:
    each batch of a 100,000-person city carries all 100,000 names for its 65,536 rows, and
    working on every name for every batch was a tenth of such a city's replay.
    """

    def __init__(self, work: Callable[[pa.Array], T]) -> None:
        self._work = work
        self._dictionary: pa.Array | None = None
        self._value: T | None = None

    def __call__(self, dictionary: pa.Array) -> T:
        if self._dictionary is None or not self._dictionary.equals(dictionary):
            self._dictionary, self._value = dictionary, self._work(dictionary)
        return self._value  # type: ignore[return-value]


class PingRows:
    """`ping_rows` for the batches of one file, in order: a person dictionary the batches repeat is checked once."""

    def __init__(self) -> None:
        self._valid = DictionaryMemo(_named_validly)

    def __call__(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        return ping_rows(batch, self._persons_valid)

    def _persons_valid(self, person: pa.Array) -> np.ndarray:
        if not pa.types.is_dictionary(person.type):
            return _each(person, _named_validly)
        return _true(self._valid(person.dictionary).take(person.indices))


def ping_rows(
    batch: pa.RecordBatch, persons_valid: Callable[[pa.Array], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(ok, ts, event_id): `ok` marks the valid pings; times and ids are theirs only (`ping_columns`
    reads the rest). `persons_valid`: where a person column's names are valid (`PingRows` remembers).

    Times are whole epoch seconds (sub-second parts dropped, as `to_epoch` does).
    """
    names = batch.schema.names
    rows = batch.num_rows
    if not set(_REQUIRED) <= set(names) or any(pa.types.is_null(batch.column(n).type) for n in _REQUIRED):
        return np.zeros(rows, dtype=bool), np.array([], dtype=np.int64), pa.array([], type=pa.string())
    ok = _each(batch.column("type"), lambda values: pc.equal(values, "ping"))
    for name in names:
        if name not in PING_FIELDS:
            ok &= _true(pc.is_null(batch.column(name)))
    event_id = _strings(batch.column("event_id"))
    lengths = pc.utf8_length(event_id)
    ok &= _true(pc.and_(pc.greater_equal(lengths, 1), pc.less_equal(lengths, 64)))
    ok &= _true(pc.match_substring_regex(event_id, PRINTABLE))
    person = batch.column("person")
    ok &= persons_valid(person) if persons_valid is not None else _each(person, _named_validly)
    lat, lon = (_floats(batch.column(name)) for name in ("lat", "lon"))
    with np.errstate(invalid="ignore"):
        ok &= np.isfinite(lat) & (lat >= -90) & (lat <= 90) & np.isfinite(lon) & (lon >= -180) & (lon <= 180)
    if "accuracy_m" in names:
        accuracy = batch.column("accuracy_m")
        values = _floats(accuracy)
        present = _true(pc.is_valid(accuracy))
        with np.errstate(invalid="ignore"):
            ok &= ~present | (np.isfinite(values) & (values >= 0) & (values <= 100_000))
    ok &= _each(batch.column("source"), lambda values: pc.is_in(values, value_set=_SOURCES))
    ts_column = batch.column("ts")
    ok &= _true(pc.is_valid(ts_column))
    if not pa.types.is_timestamp(ts_column.type) or ts_column.type.tz is None:
        ok[:] = False
    candidates = np.flatnonzero(ok)
    seconds = _seconds(ts_column, candidates)
    # A time no RFC 3339 text can state is for the models to reject with their reason.
    keep = (seconds >= _FIRST_SECOND) & (seconds <= _LAST_SECOND)
    ok[candidates[~keep]] = False
    chosen = pa.array(candidates[keep])
    return ok, seconds[keep], event_id.take(chosen)


def _person_indices(batch: pa.RecordBatch, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(dictionary, index into it of each row at `rows`) of the batch's person column."""
    person = batch.column("person").take(pa.array(rows, type=pa.int64()))
    if not pa.types.is_dictionary(person.type):
        person = pc.dictionary_encode(person)
    return person.dictionary, person.indices.to_numpy(zero_copy_only=False)


class PersonCoder:
    """Codes the persons of ping rows into a roster, each distinct dictionary once (`DictionaryMemo`)."""

    def __init__(self, roster: Roster) -> None:
        self._codes = DictionaryMemo(lambda names: roster.codes(names.to_pylist()))

    def codes(self, batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
        """The roster code of the person of each row at `rows`, coding names not seen before."""
        dictionary, indices = _person_indices(batch, rows)
        return self._codes(dictionary)[indices]


class PersonNotes:
    """Which persons ping rows name, coding none of them: a mark per entry of each distinct dictionary."""

    def __init__(self) -> None:
        self._named: set[str] = set()
        self._current: tuple[pa.Array, np.ndarray] | None = None
        self._marks = DictionaryMemo(self._start)

    def note(self, batch: pa.RecordBatch, rows: np.ndarray) -> None:
        """Note the persons of the rows at `rows`."""
        dictionary, indices = _person_indices(batch, rows)
        self._marks(dictionary)[indices] = True

    def named(self) -> set[str]:
        """Every person of the rows noted so far."""
        self._gather()
        return set(self._named)

    def _start(self, dictionary: pa.Array) -> np.ndarray:
        self._gather()
        marks = np.zeros(len(dictionary), dtype=bool)
        self._current = (dictionary, marks)
        return marks

    def _gather(self) -> None:
        if self._current is not None:
            dictionary, marks = self._current
            if marks.any():
                self._named.update(dictionary.filter(pa.array(marks)).to_pylist())
                marks[:] = False


def ping_columns(
    batch: pa.RecordBatch, rows: np.ndarray, coder: PersonCoder
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(person code in `coder`'s roster, ts, lat, lon) of the rows at `rows`, which `ping_rows` found to be
    valid pings.

    Only the rows asked for are decoded: replay reads a file's pings again, batch by
    batch, rather than holding them (see `scoring.replay`).
    """
    chosen = pa.array(rows, type=pa.int64())
    return (
        coder.codes(batch, rows),
        _seconds(batch.column("ts"), rows),
        _floats(batch.column("lat").take(chosen)),
        _floats(batch.column("lon").take(chosen)),
    )


def _floats(column: pa.Array) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def _seconds(ts_column: pa.Array, rows: np.ndarray) -> np.ndarray:
    """Whole epoch seconds of a timestamp column at `rows`."""
    seconds = pc.cast(ts_column.take(pa.array(rows, type=pa.int64())), pa.timestamp("s", tz="UTC"), safe=False)
    return seconds.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
