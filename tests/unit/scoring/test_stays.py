"""From pings to stays: a stay lasts until the next ping, at most the maximum gap."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.stays import StayStage, StayTracker, dedupe_pings, restate, stays_from_pings

GAP = 1800


def arr(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def triples(rows) -> list[tuple[int, int, int, int]]:
    return sorted(zip(rows.owner.tolist(), rows.cell.tolist(), rows.start.tolist(), rows.end.tolist()))


def test_a_stay_lasts_until_the_next_ping():
    known = stays_from_pings(7, arr(0, 600, 900), arr(1, 2, 3), GAP, watermark=0)
    assert triples(known.stays) == [(7, 1, 0, 600), (7, 2, 600, 900)]


def test_a_stay_is_capped_at_the_maximum_gap():
    known = stays_from_pings(7, arr(0, 4 * 3600), arr(1, 2), GAP, watermark=0)
    assert triples(known.stays) == [(7, 1, 0, GAP)]


def test_the_last_ping_stays_open_until_the_watermark_passes_its_cap():
    open_ = stays_from_pings(7, arr(0, 600), arr(1, 2), GAP, watermark=600 + GAP - 1)
    closed = stays_from_pings(7, arr(0, 600), arr(1, 2), GAP, watermark=600 + GAP)
    assert open_.last_open and triples(open_.stays) == [(7, 1, 0, 600)]
    assert triples(closed.stays)[-1] == (7, 2, 600, 600 + GAP)
    assert not closed.last_open


def test_pings_at_the_same_instant_keep_one_the_greatest_cell():
    person, ts, cell = arr(1, 1, 1, 2), arr(5, 5, 9, 5), arr(30, 40, 10, 20)
    kept = dedupe_pings(person, ts, cell)
    assert sorted(zip(person[kept].tolist(), ts[kept].tolist(), cell[kept].tolist())) == [
        (1, 5, 40),
        (1, 9, 10),
        (2, 5, 20),
    ]


@pytest.fixture
def tracker() -> StayTracker:
    made = StayTracker(GAP)
    made.reserve(4)
    return made


def test_the_tracker_closes_a_stay_when_the_next_ping_comes(tracker):
    assert len(tracker.advance(arr(1), arr(0), arr(11))) == 0
    closed = tracker.advance(arr(1), arr(600), arr(12))
    assert triples(closed) == [(1, 11, 0, 600)]
    assert tracker.pending(1) == (600, 12)


def test_the_tracker_handles_many_pings_of_many_persons_at_once(tracker):
    closed = tracker.advance(arr(1, 1, 1, 2, 2), arr(0, 300, 5000, 0, 60), arr(11, 12, 13, 21, 22))
    assert triples(closed) == [(1, 11, 0, 300), (1, 12, 300, 300 + GAP), (2, 21, 0, 60)]


def test_the_watermark_closes_open_stays_at_their_cap(tracker):
    tracker.advance(arr(1, 2), arr(0, 1000), arr(11, 21))
    assert triples(tracker.close_capped(GAP)) == [(1, 11, 0, GAP)]
    assert tracker.pending(1) is None
    assert tracker.pending(2) == (1000, 21)


def test_pings_before_the_last_one_or_cutting_a_capped_stay_are_not_in_order(tracker):
    tracker.advance(arr(1, 2), arr(1000, 1000), arr(11, 21))
    tracker.close_capped(1000 + GAP)
    in_order = tracker.in_order(arr(1, 2, 3), arr(500, 1000 + GAP - 1, 0))
    assert in_order.tolist() == [False, False, True]


def test_a_maximum_gap_must_be_positive():
    with pytest.raises(ValueError, match="max_gap_s"):
        StayTracker(0)


def test_restating_a_late_ping_splits_the_stay_it_falls_in(tracker):
    history = tracker.advance(arr(1, 1), arr(0, 1000), arr(11, 12))
    added, withdrawn = restate(tracker, history, arr(1), arr(400), arr(13))
    assert triples(withdrawn) == [(1, 11, 0, 1000)]
    assert triples(added) == [(1, 11, 0, 400), (1, 13, 400, 1000)]
    assert tracker.pending(1) == (1000, 12)


def test_restating_a_redelivered_ping_changes_nothing(tracker):
    history = tracker.advance(arr(1, 1), arr(0, 1000), arr(11, 12))
    added, withdrawn = restate(tracker, history, arr(1), arr(0), arr(11))
    assert len(added) == len(withdrawn) == 0


def test_a_stage_with_its_own_history_gives_the_same_stays_in_any_order():
    person, ts, cell = arr(1, 1, 1, 2, 2), arr(0, 600, 900, 0, 300), arr(11, 12, 13, 21, 22)
    in_order = StayStage(GAP)
    kept = [in_order.ingest(person, ts, cell)[0], in_order.advance(10**6)]
    shuffled = StayStage(GAP)
    changes = []
    for index in ([4, 2], [0, 3], [1]):
        pick = np.array(index)
        order = np.lexsort((ts[pick], person[pick]))
        changes.append(shuffled.ingest(person[pick][order], ts[pick][order], cell[pick][order]))
    changes.append((shuffled.advance(10**6), None))
    live: set = set()
    for added, withdrawn in changes:
        live -= set(triples(withdrawn)) if withdrawn is not None else set()
        live |= set(triples(added))
    assert live == set(triples(kept[0])) | set(triples(kept[1]))
    assert set(triples(shuffled.history.rows_of(arr(1, 2)))) == live
