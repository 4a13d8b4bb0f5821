"""The same core runs whole (replay) or split in two stages (a partitioned stream):
a person-keyed `StayStage` turning pings into stay changes, and cell-keyed
`ContactEngine`s, each owning some cells, matching them. Summed over the
partitions, they find what one engine finds."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import pytest

from scoring.cells import disc
from scoring.celltable import Rows
from scoring.contacts import OPEN_END, ContactEngine, Source
from scoring.stays import StayStage

GAP = 1200
CELLS = np.array(sorted(h3i.grid_disk(h3i.latlng_to_cell(30.6, 114.3, 10), 2)), dtype=np.int64)
PARTITION = {cell: i % 2 for i, cell in enumerate(CELLS.tolist())}


def final(engine: ContactEngine, seen: dict) -> dict:
    for source, pairs in engine.drain():
        for who, tally in pairs:
            if tally is None:
                seen.pop((source.ref, who), None)
            else:
                seen[(source.ref, who)] = (tally.seconds, tally.first, tally.last, dict(tally.by_day))
    return seen


def routed(rows: Rows, partition: int, neighbours: bool) -> Rows:
    """The stays a partition receives: those in its cells, or around them when neighbours count."""
    if not neighbours:
        return rows.take(np.array([PARTITION[c] == partition for c in rows.cell.tolist()], dtype=bool))
    near = [any(PARTITION.get(n) == partition for n in disc(c)) for c in rows.cell.tolist()]
    return rows.take(np.array(near, dtype=bool))


def owned_by(partition: int):
    mine = np.array([c for c, p in PARTITION.items() if p == partition], dtype=np.int64)
    return lambda cells: np.isin(cells, mine)


@pytest.mark.parametrize("neighbours", [False, True])
def test_a_person_stage_feeding_cell_partitions_finds_what_one_engine_finds(neighbours):
    rng = np.random.default_rng(3)
    whole = ContactEngine("close_contact", GAP, neighbours)
    stage = StayStage(GAP)
    partitions = [ContactEngine("close_contact", GAP, neighbours, owns=owned_by(p)) for p in (0, 1)]
    cases = [Source("case-a", "close_contact", 0, 0, OPEN_END), Source("case-b", "close_contact", 1, 3000, 9000)]
    for engine in (whole, *partitions):
        for case in cases:
            engine.set_source(case)
    seen_whole: dict = {}
    seen_parts: list[dict] = [{}, {}]

    def feed(added: Rows, withdrawn: Rows) -> None:
        for p, (engine, seen) in enumerate(zip(partitions, seen_parts)):
            engine.apply_stays(routed(added, p, neighbours), routed(withdrawn, p, neighbours))
            final(engine, seen)

    for _ in range(12):
        # Batches overlap in time, so some pings are late and split earlier stays.
        person = rng.integers(0, 6, 15)
        ts = rng.integers(0, 40, 15) * 300
        cell = CELLS[rng.integers(0, 8, 15)]
        order = np.lexsort((ts, person))
        person, ts, cell = person[order], ts[order], cell[order]
        whole.ingest(person, ts, cell)
        final(whole, seen_whole)
        feed(*stage.ingest(person, ts, cell))
    whole.advance(10**6)
    final(whole, seen_whole)
    feed(stage.advance(10**6), Rows.empty())

    summed: dict = {}
    for seen in seen_parts:
        for key, (seconds, first, last, by_day) in seen.items():
            total, lo, hi, days = summed.get(key, (0, OPEN_END, 0, {}))
            for day, s in by_day.items():
                days[day] = days.get(day, 0) + s
            summed[key] = (total + seconds, min(lo, first), max(hi, last), days)
    assert len(seen_whole) >= 3
    assert summed == seen_whole
