"""The same core runs whole (replay) or split in two stages (a partitioned stream):
a person-keyed `StayStage` turning pings into stay changes, and a cell-keyed
`ContactEngine.apply_stays` matching them. Both find the same co-presence."""

from __future__ import annotations

import numpy as np

from scoring.celltable import Rows
from scoring.contacts import OPEN_END, ContactEngine, Source
from scoring.stays import StayStage

GAP = 1200


def final(engine: ContactEngine, seen: dict) -> dict:
    for source, pairs in engine.drain():
        for who, tally in pairs:
            if tally is None:
                seen.pop((source.ref, who), None)
            else:
                seen[(source.ref, who)] = (tally.seconds, tally.first, tally.last, dict(tally.by_day))
    return seen


def by_cell(changes: tuple[Rows, Rows], cells: np.ndarray) -> tuple[Rows, Rows]:
    """The share of stay changes a cell partition owning `cells` receives."""
    added, withdrawn = changes
    return added.take(np.isin(added.cell, cells)), withdrawn.take(np.isin(withdrawn.cell, cells))


def test_a_person_stage_feeding_cell_partitions_finds_what_one_engine_finds():
    rng = np.random.default_rng(3)
    whole = ContactEngine("close_contact", GAP, include_neighbours=False)
    stage = StayStage(GAP)
    partitions = [ContactEngine("close_contact", GAP, include_neighbours=False) for _ in range(2)]
    owned = [np.array([0, 2]), np.array([1, 3])]
    cases = [Source("case-a", "close_contact", 0, 0, OPEN_END), Source("case-b", "close_contact", 1, 3000, 9000)]
    for engine in (whole, *partitions):
        for case in cases:
            engine.set_source(case)
    seen_whole: dict = {}
    seen_parts: list[dict] = [{}, {}]
    for _ in range(12):
        # Batches overlap in time, so some pings are late and split earlier stays.
        person = rng.integers(0, 6, 15)
        ts = rng.integers(0, 40, 15) * 300
        cell = rng.integers(0, 4, 15)
        order = np.lexsort((ts, person))
        person, ts, cell = person[order], ts[order], cell[order]
        whole.ingest(person, ts, cell)
        changes = stage.ingest(person, ts, cell)
        for engine, cells, seen in zip(partitions, owned, seen_parts):
            engine.apply_stays(*by_cell(changes, cells))
            final(engine, seen)
        final(whole, seen_whole)
    whole.advance(10**6)
    closed = stage.advance(10**6)
    for engine, cells, seen in zip(partitions, owned, seen_parts):
        engine.apply_stays(*by_cell((closed, Rows.empty()), cells))
        final(engine, seen)
    final(whole, seen_whole)

    summed: dict = {}
    for seen in seen_parts:
        for key, (seconds, first, last, by_day) in seen.items():
            total, lo, hi, days = summed.get(key, (0, OPEN_END, 0, {}))
            for day, s in by_day.items():
                days[day] = days.get(day, 0) + s
            summed[key] = (total + seconds, min(lo, first), max(hi, last), days)
    assert seen_whole
    assert summed == seen_whole
