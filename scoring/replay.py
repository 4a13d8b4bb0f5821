"""Replay: the whole core over a file of events, in event-time order, as the stream would.

Reading is the only thing replay adds to `CityScorer`: JSONL (a path or `-` for
stdin) or Parquet with the contract's columns. Malformed lines are skipped and
reported with their line numbers, duplicate event ids are applied once, and events
are fed in event-time order (arrival order among equal times).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from scoring.city import CityScorer
from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event
from scoring.people import PersonChange, sorted_changes
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
    """Valid events of a file, split for speed: pings as columns, the rest as models."""

    ping_person: np.ndarray
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


@dataclass
class ReplayResult:
    """A replay's level timeline and what it saw."""

    timeline: list[PersonChange]
    rule_set: str
    events: int
    pings: int
    malformed: list[Malformed]
    duplicates: int
    exposures: int
    """Distinct exposures found (person, kind, source) and not retracted."""
    levels: dict[str, int]
    """Persons at each level at the end."""


class _Collector:
    """Accumulates decoded events into `Inputs`, dropping repeated event ids."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.duplicates = 0
        self.malformed: list[Malformed] = []
        self.person: list[str] = []
        self.ts: list[int] = []
        self.lat: list[float] = []
        self.lon: list[float] = []
        self.order: list[int] = []
        self.others: list[tuple[int, int, Any]] = []

    def first_time(self, event_id: str) -> bool:
        if event_id in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(event_id)
        return True

    def add(self, position: int, event: Ping | Visit | TestResult | AreaRisk) -> None:
        if not self.first_time(event.event_id):
            return
        if isinstance(event, Ping):
            self.person.append(event.person)
            self.ts.append(to_epoch(event.ts))
            self.lat.append(event.lat)
            self.lon.append(event.lon)
            self.order.append(position)
        else:
            self.others.append((to_epoch(event.ts), position, event))

    def inputs(self) -> Inputs:
        return Inputs(
            np.array(self.person, dtype=object),
            np.array(self.ts, dtype=np.int64),
            np.array(self.lat, dtype=np.float64),
            np.array(self.lon, dtype=np.float64),
            np.array(self.order, dtype=np.int64),
            self.others,
            self.malformed,
            self.duplicates,
        )


def read_jsonl(lines: Iterator[bytes], progress: Progress | None = None) -> Inputs:
    """Decode JSON lines (1-based numbering for reports)."""
    collector = _Collector()
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


def read_parquet(path: Path, progress: Progress | None = None) -> Inputs:
    """Decode a Parquet file with the contract's columns; pings are checked column-wise."""
    from scoring.columns import ping_rows

    import pyarrow.parquet as pq

    collector = _Collector()
    position = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=500_000):
        ok, person, ts, lat, lon, ids = ping_rows(batch)
        rows = np.arange(position + 1, position + batch.num_rows + 1)
        for event_id, row, who, moment, y, x in zip(
            ids.tolist(), rows[ok].tolist(), person.tolist(), ts.tolist(), lat.tolist(), lon.tolist()
        ):
            if collector.first_time(event_id):
                collector.person.append(who)
                collector.ts.append(moment)
                collector.lat.append(y)
                collector.lon.append(x)
                collector.order.append(row)
        rest = np.flatnonzero(~ok)
        if rest.size:
            records = batch.take(rest).to_pylist()
            for row, record in zip(rows[rest].tolist(), records):
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


def read_events(source: str | Path, progress: Progress | None = None) -> Inputs:
    """Read EVENTS: a JSONL path, `-` for stdin, or a `.parquet` path."""
    if str(source) == "-":
        return read_jsonl(iter(sys.stdin.buffer), progress)
    path = Path(source)
    if path.suffix == ".parquet":
        return read_parquet(path, progress)
    with open(path, "rb") as handle:
        return read_jsonl(iter(handle), progress)


def replay(inputs: Inputs, rules: RuleSet, until: int | None = None) -> ReplayResult:
    """Score every person over `inputs` in event-time order, up to `until` if given."""
    scorer = CityScorer(rules)
    order = np.lexsort((inputs.ping_order, inputs.ping_ts))
    ping_ts = inputs.ping_ts[order]
    persons, lat, lon = inputs.ping_person[order], inputs.ping_lat[order], inputs.ping_lon[order]
    others = sorted(inputs.others, key=lambda item: (item[0], item[1]))
    if until is not None:
        others = [item for item in others if item[0] <= until]
        cut = int(np.searchsorted(ping_ts, until, side="right"))
        ping_ts, persons, lat, lon = ping_ts[:cut], persons[:cut], lat[:cut], lon[:cut]
    start = 0
    for moment, _, event in others:
        end = int(np.searchsorted(ping_ts, moment, side="right"))
        if end > start:
            scorer.add_pings(persons[start:end], ping_ts[start:end], lat[start:end], lon[start:end])
            start = end
        scorer.add_event(event)
    if start < len(ping_ts):
        scorer.add_pings(persons[start:], ping_ts[start:], lat[start:], lon[start:])
    timeline = sorted_changes(scorer.finish(until))
    final: dict[str, str] = {}
    for change in timeline:
        final[change.person] = change.level
    everyone = set(inputs.ping_person.tolist()) | {event.person for _, _, event in inputs.others if not isinstance(event, AreaRisk)}
    levels = {"green": 0, "yellow": 0, "red": 0}
    for person in everyone:
        levels[final.get(person, "green")] += 1
    return ReplayResult(
        timeline=timeline,
        rule_set=rules.ref,
        events=inputs.count,
        pings=len(ping_ts),
        malformed=inputs.malformed,
        duplicates=inputs.duplicates,
        exposures=len(scorer.counts.exposed_pairs),
        levels=levels,
    )


def replay_file(source: str | Path, rules: RuleSet, until: int | None = None, progress: Progress | None = None) -> ReplayResult:
    """Read a file and replay it (the Python API behind `healthcode replay`)."""
    return replay(read_events(source, progress), rules, until)


def write_timeline(changes: list[PersonChange], out: Path) -> None:
    """One JSON object per level change, in timeline order."""
    with open(out, "wb") as handle:
        for change in changes:
            handle.write(orjson.dumps(change.to_json()))
            handle.write(b"\n")
