"""Replay: the whole core over a file of events, in event-time order, as the stream would.

Reading the file is `scoring.eventfile`'s; replay feeds what it read to `CityScorer`:
pings batch by batch, each waiting only until no later batch can hold an earlier one,
and the other events in event-time order (arrival order among equal times).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from scoring.cells import Snapped, taken
from scoring.city import CityScorer
from scoring.eventfile import Inputs, Malformed, PingBatch, Progress, read_events
from scoring.people import GREEN, PersonChange, sorted_changes
from scoring.pseudonyms import Coded
from scoring.rules import RuleSet


SnapAhead = Callable[[Iterable[PingBatch], Sequence[int]], Iterator[tuple[PingBatch, Snapped]]]
"""Gives each batch of pings with its cells at the resolutions asked for (`scoring.cells.Snapped`),
snapped ahead: the CLI snaps the next batch in another process while this one scores
(`healthcode.snapahead`)."""


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


def replay(
    inputs: Inputs,
    rules: RuleSet | Sequence[RuleSet],
    until: int | None = None,
    snap_ahead: SnapAhead | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """Score every person over `inputs` in event-time order, up to `until` if given.

    Several rule sets each take effect at their `valid_from`. Pings come batch by batch
    in arrival order and wait only until no later batch can hold an earlier one, so the
    pings held follow how far the input is out of time order, not its length; the core
    sees them in (time, arrival) order, and before another event of the same time.
    With `snap_ahead`, their cells come with them (the same cells: only where they are
    snapped differs). `progress` is told how many events have been scored (or passed, past
    `until`) after each batch: scoring an outbreak city takes minutes, reading it seconds.
    """
    scorer = CityScorer(rules)
    others = sorted(inputs.others, key=lambda item: (item[0], item[1]))
    if until is not None:
        others = [item for item in others if item[0] <= until]
    roster = inputs.pings.roster
    resolutions = scorer.resolutions if snap_ahead is not None else []
    batches = ((batch, {}) for batch in inputs.pings.batches()) if snap_ahead is None else \
        snap_ahead(inputs.pings.batches(), resolutions)
    # Pings held: (codes, ts, lat, lon, order), then their cells at each of `resolutions`.
    held = [np.empty(0, dtype=kind) for kind in (np.int64, np.int64, np.float64, np.float64, np.int64)]
    held += [np.empty(0, dtype=np.int64) for _ in resolutions]
    pings = 0
    following = 0
    for batch, snapped in batches:
        given = (batch.codes, batch.ts, batch.lat, batch.lon, batch.order, *(snapped[r] for r in resolutions))
        columns = [np.concatenate(pair) for pair in zip(held, given)]
        if until is not None:
            columns = [column[columns[1] <= until] for column in columns]
        arranged = time_order(columns[1], columns[4])
        held = [column[arranged] for column in columns]
        codes, ts, lat, lon = held[:4]
        cells = dict(zip(resolutions, held[5:])) or None
        complete = len(ts) if batch.later is None else int(np.searchsorted(ts, batch.later, side="left"))
        horizon = None if batch.later is None else batch.later
        # Pings before `horizon` are all here, and so is every ping at or before another event's time before it.
        start = 0
        while following < len(others) and (horizon is None or others[following][0] < horizon):
            moment, _, event = others[following]
            end = int(np.searchsorted(ts[:complete], moment, side="right"))
            part = slice(start, end)
            scorer.add_pings(Coded(codes[part], roster), ts[part], lat[part], lon[part], taken(cells, part))
            start = end
            scorer.add_event(event)
            following += 1
        part = slice(start, complete)
        scorer.add_pings(Coded(codes[part], roster), ts[part], lat[part], lon[part], taken(cells, part))
        pings += complete
        held = [column[complete:] for column in held]
        if progress is not None:
            progress(pings + following)
    for _, _, event in others[following:]:
        scorer.add_event(event)
    timeline = sorted_changes(scorer.finish(until))
    if progress is not None:
        progress(inputs.count)
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
        pings=pings,
        malformed=inputs.malformed,
        duplicates=inputs.duplicates,
        exposures=len(scorer.counts.exposed_pairs),
        levels=levels,
    )


def time_order(ts: np.ndarray, arrival: np.ndarray) -> np.ndarray:
    """The permutation that sorts rows by (ts, arrival): `np.lexsort((arrival, ts))`, about three times as fast.

    The rows are those held, sorted already, then a batch in about time order: a stable sort of the
    times alone (timsort, which takes the sorted stretches as they are) leaves rows of one time in the
    order given, which is nearly always by arrival too. Re-sorting a million rows held on two keys for
    each batch was a twentieth of the 100k city's replay; when a tie is out of arrival order, both keys
    are sorted.
    """
    order = np.argsort(ts, kind="stable")
    ts_sorted, arrival_sorted = ts[order], arrival[order]
    if np.any((ts_sorted[1:] == ts_sorted[:-1]) & (arrival_sorted[1:] < arrival_sorted[:-1])):
        return np.lexsort((arrival, ts))
    return order


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
