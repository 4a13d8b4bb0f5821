"""Replay: the whole core over a file of events, in event-time order, as the stream would.

Reading is the only thing replay adds to `CityScorer`: JSONL (a path or `-` for
stdin) or Parquet with the contract's columns. Malformed lines are skipped and
reported with their line numbers, duplicate event ids are applied once, and events
are fed in event-time order (arrival order among equal times).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from scoring.city import CityScorer
from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event
from scoring.limits import EventLimits, latest_accepted, limit_breach, time_breach
from scoring.people import GREEN, PersonChange, sorted_changes
from scoring.rules import RuleSet
from scoring.timeutil import to_epoch

Progress = Callable[[int], None]
"""Called with how much input has been read so far: bytes of JSONL, rows of Parquet."""


@dataclass(frozen=True)
class Malformed:
    """A line (or Parquet row, 1-based) that is not a valid v1 event."""

    line: int
    reason: str


@dataclass
class Inputs:
    """Valid events of a file, split for speed: pings as columns, the rest as models.

    Pings are held as numbers, persons as codes into `names`: a city's file is tens of
    millions of pings, and a Python string per ping is what made a replay's memory
    grow with the file (10 GB for a month of 10,000 residents).
    """

    ping_person: np.ndarray
    """The person of each ping: an index into `names` (int32)."""
    names: np.ndarray
    """Pseudonyms (object array), each once."""
    ping_ts: np.ndarray
    ping_lat: np.ndarray
    ping_lon: np.ndarray
    ping_order: np.ndarray
    """Arrival position of each ping, to break ties with other events deterministically."""
    others: list[tuple[int, int, Visit | TestResult | AreaRisk]]
    """(event time, arrival position, event)."""
    malformed: list[Malformed] = field(default_factory=list)
    duplicates: int = 0

    @property
    def count(self) -> int:
        return len(self.ping_ts) + len(self.others)

    def persons(self) -> set[str]:
        """Every person a valid event names (a ping, a visit, a test result)."""
        persons = set(self.names[np.unique(self.ping_person)].tolist())
        persons.update(event.person for _, _, event in self.others if not isinstance(event, AreaRisk))
        return persons


@dataclass
class ReplayResult:
    """A replay's level timeline and what it saw."""

    timeline: list[PersonChange]
    """A line per change of a person's level or of their set of active reasons, in timeline order."""
    rule_set: str
    events: int
    pings: int
    malformed: list[Malformed]
    duplicates: int
    exposures: int
    """Distinct exposures found (person, kind, source) and not retracted."""
    levels: dict[str, int]
    """Persons at each level at the end."""


_CHUNK = 500_000
"""Pings decoded one by one (JSONL) are packed into columns this many at a time."""


class _Collector:
    """Accumulates decoded events into `Inputs`; repeated event ids are dropped at the end.

    Pings arrive as column chunks (Parquet) or one by one (JSONL); de-duplication runs
    once over all ids in arrival order, so the first copy of an event is the one kept.
    Ids are kept as Arrow strings and persons as codes, a few bytes a ping.
    """

    def __init__(self, limits: EventLimits, now: int | None) -> None:
        self.limits = limits
        self.now = now
        self.malformed: list[Malformed] = []
        self._chunks: list[tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._codes: dict[str, int] = {}
        self._names: list[str] = []
        self._ids: list[str] = []
        self._person: list[str] = []
        self._ts: list[int] = []
        self._lat: list[float] = []
        self._lon: list[float] = []
        self._order: list[int] = []
        self.others: list[tuple[int, int, Any]] = []
        self._other_ids: list[str] = []

    def add(self, position: int, event: Ping | Visit | TestResult | AreaRisk) -> None:
        breach = limit_breach(event, self.limits, self.now)
        if breach is not None:
            self.malformed.append(Malformed(position, breach.reason))
            return
        if isinstance(event, Ping):
            self._ids.append(event.event_id)
            self._person.append(event.person)
            self._ts.append(to_epoch(event.ts))
            self._lat.append(event.lat)
            self._lon.append(event.lon)
            self._order.append(position)
            if len(self._ids) >= _CHUNK:
                self._pack()
        else:
            self._other_ids.append(event.event_id)
            self.others.append((to_epoch(event.ts), position, event))

    def add_pings(self, ids: np.ndarray, person: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                  order: np.ndarray) -> None:
        out = (ts < self.limits.earliest) | (ts > latest_accepted(self.limits, self.now))
        for row, seconds in zip(order[out].tolist(), ts[out].tolist()):
            breach = time_breach("ts", seconds, self.limits, self.now)
            assert breach is not None  # `out` is the same test, on the whole column
            self.malformed.append(Malformed(row, breach.reason))
        keep = ~out
        kept = ids[keep]
        self._chunks.append(
            (pa.array(kept, type=pa.large_string()), _hashes(kept), self._code(person[keep]), ts[keep], lat[keep],
             lon[keep], order[keep])
        )

    def _code(self, person: np.ndarray) -> np.ndarray:
        """Codes (int32) of pseudonyms, new ones numbered in order of first sight."""
        codes, uniques = pd.factorize(person)
        known = np.empty(len(uniques), dtype=np.int32)
        for index, name in enumerate(uniques.tolist()):
            code = self._codes.get(name)
            if code is None:
                code = self._codes[name] = len(self._names)
                self._names.append(name)
            known[index] = code
        return known[codes] if len(codes) else np.empty(0, dtype=np.int32)

    def _pack(self) -> None:
        """Move the pings decoded one by one into a column chunk."""
        self.add_pings(
            np.array(self._ids, dtype=object), np.array(self._person, dtype=object),
            np.array(self._ts, dtype=np.int64), np.array(self._lat, dtype=np.float64),
            np.array(self._lon, dtype=np.float64), np.array(self._order, dtype=np.int64),
        )
        for column in (self._ids, self._person, self._ts, self._lat, self._lon, self._order):
            column.clear()

    def inputs(self) -> Inputs:
        self._pack()
        columns = [list(parts) for parts in zip(*self._chunks)]
        self._chunks = []
        ids, hashes = columns[:2]
        # Column by column, each one's chunks let go once joined: a city's pings are gigabytes.
        person, ts, lat, lon, order = (np.concatenate(columns.pop(2)) for _ in range(5))
        other_ids = np.array(self._other_ids, dtype=object)
        every_id = [*ids, pa.array(other_ids, type=pa.large_string())]
        other_order = np.array([position for _, position, _ in self.others], dtype=np.int64)
        arrival = np.argsort(np.concatenate([order, other_order]), kind="stable")
        repeated = np.empty(len(arrival), dtype=bool)
        in_arrival = np.concatenate([*hashes, _hashes(other_ids)])[arrival]
        repeated[arrival] = _repeats(in_arrival, lambda rows: _strings_at(every_id, arrival[rows]))
        del every_id, arrival, in_arrival
        keep_ping, keep_other = ~repeated[: len(ts)], ~repeated[len(ts):]
        if not keep_ping.all():
            person, ts, lat, lon, order = (column[keep_ping] for column in (person, ts, lat, lon, order))
        return Inputs(
            person, np.array(self._names, dtype=object), ts, lat, lon, order,
            [item for item, keep in zip(self.others, keep_other.tolist()) if keep],
            sorted(self.malformed, key=lambda bad: bad.line),
            int(repeated.sum()),
        )


def _hashes(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of ids (a fixed key, so equal ids hash alike in every chunk)."""
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


def _repeats(hashes: np.ndarray, ids_at: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """True where an id was seen earlier, from the ids' hashes in arrival order.

    Only rows whose hash another row shares can be repeats; their ids (`ids_at`, given
    positions) are compared exactly. Eight bytes a row, where a dictionary of every id
    cost gigabytes on a city of 26 M events.
    """
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    equal = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(hashes), dtype=bool)
    if not equal.any():
        return repeated
    shared = np.zeros(len(hashes), dtype=bool)
    shared[1:] |= equal
    shared[:-1] |= equal
    rows = np.sort(order[shared])
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
    collector = _Collector(limits, now)
    consumed = 0
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
    if progress is not None:
        progress(consumed)
    return collector.inputs()


def read_parquet(
    path: Path, progress: Progress | None = None, limits: EventLimits = EventLimits(), now: int | None = None
) -> Inputs:
    """Decode a Parquet file with the contract's columns; pings are checked column-wise (limits as `read_jsonl`)."""
    from scoring.columns import ping_rows

    import pyarrow.parquet as pq

    collector = _Collector(limits, now)
    position = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=500_000):
        ok, person, ts, lat, lon, ids = ping_rows(batch)
        rows = np.arange(position + 1, position + batch.num_rows + 1)
        collector.add_pings(ids, person, ts, lat, lon, rows[ok])
        for index in np.flatnonzero(~ok).tolist():
            row = position + index + 1
            try:
                record = batch.slice(index, 1).to_pylist()[0]
            except (OverflowError, ValueError) as error:
                collector.malformed.append(Malformed(row, f"a value cannot be read: {error}"))
                continue
            try:
                event = decode_event(orjson.dumps(_without_nulls(record)))
            except EventError as error:
                collector.malformed.append(Malformed(row, error.reason))
                continue
            collector.add(row, event)
        position += batch.num_rows
        if progress is not None:
            progress(position)
    return collector.inputs()


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


def replay(inputs: Inputs, rules: RuleSet | Sequence[RuleSet], until: int | None = None) -> ReplayResult:
    """Score every person over `inputs` in event-time order, up to `until` if given.

    Several rule sets each take effect at their `valid_from`.
    """
    scorer = CityScorer(rules)
    order = np.lexsort((inputs.ping_order, inputs.ping_ts))
    ping_ts = inputs.ping_ts[order]
    persons, lat, lon = inputs.ping_person[order], inputs.ping_lat[order], inputs.ping_lon[order]
    del order
    names = inputs.names
    others = sorted(inputs.others, key=lambda item: (item[0], item[1]))
    if until is not None:
        others = [item for item in others if item[0] <= until]
        cut = int(np.searchsorted(ping_ts, until, side="right"))
        ping_ts, persons, lat, lon = ping_ts[:cut], persons[:cut], lat[:cut], lon[:cut]
    start = 0
    for moment, _, event in others:
        end = int(np.searchsorted(ping_ts, moment, side="right"))
        scorer.add_pings(names[persons[start:end]], ping_ts[start:end], lat[start:end], lon[start:end])
        start = end
        scorer.add_event(event)
    scorer.add_pings(names[persons[start:]], ping_ts[start:], lat[start:], lon[start:])
    timeline = sorted_changes(scorer.finish(until))
    final: dict[str, str] = {}
    for change in timeline:
        final[change.person] = change.level
    levels = {"green": 0, "yellow": 0, "red": 0}
    for person in inputs.persons():
        levels[final.get(person, "green")] += 1
    return ReplayResult(
        timeline=timeline,
        rule_set=scorer.rules.ref,
        events=inputs.count,
        pings=len(ping_ts),
        malformed=inputs.malformed,
        duplicates=inputs.duplicates,
        exposures=len(scorer.counts.exposed_pairs),
        levels=levels,
    )


def replay_file(
    source: str | Path, rules: RuleSet | Sequence[RuleSet], until: int | None = None, progress: Progress | None = None
) -> ReplayResult:
    """Read a file and replay it (the Python API behind `healthcode replay`)."""
    return replay(read_events(source, progress), rules, until)


def level_changes(timeline: Iterable[PersonChange]) -> list[PersonChange]:
    """The lines of a timeline (in order) that change their person's level; the others change only
    the set of active reasons (timeline contract 3, `scoring.timeline`)."""
    level: dict[str, str] = {}
    found = []
    for change in timeline:
        if change.level != level.get(change.person, GREEN):
            found.append(change)
        level[change.person] = change.level
    return found


def write_timeline(changes: list[PersonChange], out: Path) -> None:
    """One JSON object per timeline line (a change of level or of reasons), in timeline order."""
    with open(out, "wb") as handle:
        for change in changes:
            handle.write(orjson.dumps(change.to_json()))
            handle.write(b"\n")
