"""The cell-keyed table under the presence index, and the H3 helpers on arrays."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import celltable
from scoring.cells import disc, discs, parent, snap, snap_all
from scoring.celltable import CellTable, Rows, _Run, expand_ranges, sorted_union


def rows(*items: tuple[int, int, int, int]) -> Rows:
    cell, owner, start, end = (np.array(c, dtype=np.int64) for c in zip(*items))
    return Rows(cell, owner, start, end)


def as_set(found: Rows) -> set[tuple[int, int, int, int]]:
    return set(zip(found.cell.tolist(), found.owner.tolist(), found.start.tolist(), found.end.tolist()))


def test_expand_ranges_lists_every_member_of_every_range():
    which, position = expand_ranges(np.array([5, 0, 9]), np.array([2, 0, 3]))
    assert which.tolist() == [0, 0, 2, 2, 2]
    assert position.tolist() == [5, 6, 9, 10, 11]


def test_the_union_of_two_runs_cells_is_every_cell_of_either_once_in_order():
    rng = np.random.default_rng(3)
    cells = h3i.latlng_to_cell(31.23, 121.47, 8) + np.arange(0, 4000, 7, dtype=np.int64)  # wide values
    for older_size, newer_size in ((0, 5), (5, 0), (300, 40), (40, 300)):
        older = np.sort(rng.choice(cells, older_size, replace=False))
        newer = np.sort(rng.choice(cells, newer_size, replace=False))
        union = sorted_union(older, newer)
        assert union.tolist() == sorted(set(older.tolist()) | set(newer.tolist()))
        assert union.dtype == np.int64


def test_lookup_finds_rows_of_the_asked_cells_across_many_appends():
    table = CellTable()
    expected = set()
    for batch in range(20):
        items = [(cell, batch, cell * 100 + batch, cell * 100 + batch + 1) for cell in range(batch % 5, 30, 3)]
        table.append(rows(*items))
        expected |= set(items)
    query, found = table.lookup(np.array([4, 7, 99]), np.zeros(3, dtype=np.int64), np.full(3, 10_000))
    assert as_set(found) == {r for r in expected if r[0] in (4, 7)}
    assert set(np.array([4, 7, 99])[query].tolist()) == {4, 7}
    assert len(table) == len(expected)


def test_lookup_narrows_to_rows_that_can_overlap_the_asked_time():
    table = CellTable()
    table.append(rows(*[(1, owner, 100 * owner, 100 * owner + 50) for owner in range(10)]))
    table.append(rows((1, 99, 420, 430), (2, 98, 420, 430)))
    query, found = table.lookup(np.array([1, 2]), np.array([420, 0]), np.array([460, 10]))
    assert as_set(found.take(query == 0)) == {(1, 4, 400, 450), (1, 99, 420, 430)}
    assert len(found.take(query == 1)) == 0


def test_rows_without_an_end_are_found_at_any_later_time():
    table = CellTable()
    table.append(rows((1, 0, 100, 2**63 - 1), (1, 1, 5000, 6000)))
    query, found = table.lookup(np.array([1]), np.array([10**9]), np.array([10**9 + 1]))
    assert (1, 0, 100, 2**63 - 1) in as_set(found)


def test_rows_far_apart_in_time_are_found_together():
    table = CellTable()
    table.append(rows((5, 1, 10**9, 10**9 + 60)))
    table.append(rows((5, 2, 2 * 10**9, 2 * 10**9 + 60), (3, 3, 10**9 + 30, 10**9 + 90)))
    query, found = table.lookup(np.array([5, 3]), np.array([10**9, 10**9]), np.array([10**9 + 40, 10**9 + 40]))
    assert as_set(found) == {(5, 1, 10**9, 10**9 + 60), (3, 3, 10**9 + 30, 10**9 + 90)}


def test_runs_stay_few_as_the_table_grows(monkeypatch):
    monkeypatch.setattr(celltable, "_PENDING_ROWS", 1)  # every append sorted at once: a run each
    table = CellTable()
    for batch in range(256):
        table.append(rows((batch, 0, 0, 1)))
    assert len(table.runs) <= 9


DAY = 86_400


def _days_of_rows(table: CellTable, days: int, batches: int = 24) -> None:
    # As presence appends stays: a batch per tick, in time order, day after day.
    for day in range(days):
        for batch in range(batches):
            at = day * DAY + batch * 3600
            table.append(rows(*[(cell, batch, at, at + 900) for cell in range(50)]))


@pytest.mark.parametrize("pending", [1, 1 << 16])
def test_a_days_rows_are_never_merged_into_another_days_run(monkeypatch, pending):
    monkeypatch.setattr(celltable, "_PENDING_ROWS", pending)  # sorted at each append, or all at the first read
    table = CellTable()
    _days_of_rows(table, days=3)
    assert all(len(set((run.starts() // DAY).tolist())) == 1 for run in table.runs)
    assert len(table) == 3 * 24 * 50


def test_a_lookup_searches_only_the_runs_its_queries_can_reach(monkeypatch):
    table = CellTable()
    _days_of_rows(table, days=14)
    searched = []
    find = _Run.find
    monkeypatch.setattr(_Run, "find", lambda run, *args: searched.append(run) or find(run, *args))
    last_hour = 13 * DAY + 23 * 3600
    query, found = table.lookup(np.array([7]), np.array([last_hour]), np.array([last_hour + 600]))
    assert as_set(found) == {(7, 23, last_hour, last_hour + 900)}
    assert searched and all(run.latest >= 13 * DAY for run in searched)
    assert len(searched) < len(table.runs)


def test_rows_waiting_to_be_sorted_are_read_like_the_others(monkeypatch):
    monkeypatch.setattr(celltable, "_PENDING_ROWS", 4)
    table = CellTable()
    table.append(rows((1, 10, 0, 5), (2, 11, 0, 5), (3, 12, 0, 5)))
    assert not table._sorted  # three rows wait
    table.append(rows((1, 11, 5, 9), (2, 10, 5, 9)))
    assert table._sorted and not table._pending  # five: sorted without a read
    table.append(rows((1, 12, 9, 20)))
    assert as_set(table.lookup(np.array([1]), np.array([0]), np.array([30]))[1]) == {
        (1, 10, 0, 5), (1, 11, 5, 9), (1, 12, 9, 20)}
    table.append(rows((4, 10, 20, 30)))
    assert as_set(table.rows_of(np.array([10]))) == {(1, 10, 0, 5), (2, 10, 5, 9), (4, 10, 20, 30)}
    table.append(rows((5, 13, 20, 30)))
    table.withdraw(5, 13, 20)
    table.append(rows((6, 14, 20, 30)))
    table.drop_ended(9)
    assert len(table) == 3 and as_set(table.rows_of(np.array([12, 13, 14]))) == {(1, 12, 9, 20), (6, 14, 20, 30)}


def test_withdrawn_rows_are_not_found_and_are_deleted_later():
    table = CellTable()
    table.append(rows((1, 10, 0, 5), (1, 11, 0, 5), (2, 10, 5, 9)))
    table.withdraw(1, 10, 0)
    assert as_set(table.lookup(np.array([1]), np.array([0]), np.array([9]))[1]) == {(1, 11, 0, 5)}
    table.drop_ended(0)
    assert len(table) == 2


def test_rows_that_ended_before_the_cutoff_are_deleted():
    table = CellTable()
    table.append(rows((1, 10, 0, 5), (1, 11, 3, 8), (2, 10, 5, 9)))
    table.drop_ended(5)
    assert table.nbytes == 2 * 8 + 2 * 16  # two distinct cells, then 16 bytes a row
    assert as_set(table.rows_of(np.array([10, 11]))) == {(1, 11, 3, 8), (2, 10, 5, 9)}


def test_rows_of_owners_are_found_before_and_after_withdrawals():
    table = CellTable()
    table.append(rows(*[(cell, cell % 3, cell, cell + 1) for cell in range(12)]))
    assert as_set(table.rows_of(np.array([1]))) == {(c, 1, c, c + 1) for c in (1, 4, 7, 10)}
    table.withdraw(4, 1, 4)
    table.append(rows((50, 1, 0, 1)))
    assert as_set(table.rows_of(np.array([1, 2, 9]))) == {(c, 1, c, c + 1) for c in (1, 7, 10)} | {
        (c, 2, c, c + 1) for c in (2, 5, 8, 11)
    } | {(50, 1, 0, 1)}


@given(
    stays=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 5 * DAY), st.integers(1, 2 * DAY)),
        min_size=1, max_size=60,
    ),
    reads=st.lists(st.integers(1, 59), max_size=6),
    window=st.tuples(st.integers(-DAY, 6 * DAY), st.integers(0, 3 * DAY)),
    open_ended=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_rows_of_owners_in_a_window_are_every_one_of_their_rows_overlapping_it(stays, reads, window, open_ended):
    table = CellTable()
    for position, (cell, owner, start, length) in enumerate(stays):
        table.append(rows((cell, owner, start, start + length)))
        if position in reads:
            table.rows_of(np.array([0]))  # a read sorts what waits into runs, which merge within a day
    start = window[0]
    end = None if open_ended else start + window[1]
    owners = np.array([1, 2])
    found = as_set(table.rows_of(owners, start, end))
    held = {(c, o, s, s + n) for c, o, s, n in stays if o in (1, 2)}
    overlapping = {row for row in held if row[3] > start and (end is None or row[2] < end)}
    assert overlapping <= found <= held


def test_rows_of_owners_in_a_window_leave_out_the_days_it_does_not_reach():
    table = CellTable()
    for day in range(4):
        table.append(rows((1, 7, day * DAY, day * DAY + 3600), (2, 8, day * DAY, day * DAY + 60)))
        table.rows_of(np.array([7]))  # each day's rows a run of their own
    assert as_set(table.rows_of(np.array([7]), 2 * DAY + 7200, 3 * DAY + 1)) == {(1, 7, 3 * DAY, 3 * DAY + 3600)}


def test_all_rows_of_one_owner_can_be_withdrawn():
    table = CellTable()
    table.append(rows((1, 10, 0, 5), (1, 11, 3, 8)))
    table.withdraw_owner(10)
    assert as_set(table.rows_of(np.array([10, 11]))) == {(1, 11, 3, 8)}


def test_snapping_matches_h3_and_coarser_cells_are_ancestors():
    lat, lon = np.array([30.6, 30.61, -33.9]), np.array([114.3, 114.31, 151.2])
    cells = snap_all(lat, lon, [8, 10])
    assert cells[10].tolist() == [h3i.latlng_to_cell(a, b, 10) for a, b in zip(lat, lon)]
    assert cells[8].tolist() == [h3i.cell_to_parent(c, 8) for c in cells[10].tolist()]
    assert parent(snap(lat, lon, 12), 9).tolist() == [
        h3i.cell_to_parent(h3i.latlng_to_cell(a, b, 12), 9) for a, b in zip(lat, lon)
    ]


def test_discs_are_a_cell_and_its_ring():
    cell = h3i.latlng_to_cell(30.6, 114.3, 10)
    which, members = discs(np.array([cell, cell]))
    assert which.tolist() == [0] * 7 + [1] * 7
    assert set(members.tolist()) == set(h3i.grid_disk(cell, 1)) == set(disc(cell))


def test_rows_centuries_apart_are_kept_in_runs_of_their_own_and_all_found() -> None:
    # Event-time limits keep this from happening; switched off, the table must still hold them.
    table = CellTable()
    year = 365 * 86_400
    early = Rows(np.array([7, 8]), np.array([1, 2]), np.array([-1_900 * year, 0]), np.array([-1_900 * year + 60, 60]))
    table.append(early)
    late = Rows(np.array([7]), np.array([3]), np.array([200 * year]), np.array([200 * year + 60]))
    table.append(late)
    query, found = table.lookup(np.array([7, 7, 8]), np.array([-1_900 * year, 200 * year, 0]),
                                np.array([-1_900 * year + 1, 200 * year + 1, 1]))
    assert sorted(zip(query.tolist(), found.owner.tolist())) == [(0, 1), (1, 3), (2, 2)]
    assert len(table) == 3
