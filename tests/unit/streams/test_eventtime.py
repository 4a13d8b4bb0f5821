"""Event time in the stream: per-partition watermarks, quiet partitions, live mode, time order."""

from __future__ import annotations

import pytest

from streams.eventtime import NEVER, TimeOrder, Watermarks

LATENESS = 600
IDLE = 2.0
A, B = ("pings", 0), ("pings", 1)


@pytest.fixture
def marks() -> Watermarks:
    """Two input partitions, tracked from worker time 0."""
    watermarks = Watermarks(LATENESS, IDLE)
    watermarks.track([A, B], now=0.0)
    return watermarks


def test_the_watermark_is_the_least_partition_progress_minus_the_lateness(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 7_000, now=0.1)
    assert marks.aligned(now=0.2) == 7_000 - LATENESS


def test_a_partition_that_delivered_nothing_holds_everything_back(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    assert marks.aligned(now=0.2) == NEVER


def test_a_caught_up_partition_counts_as_the_newest_event_minus_the_lateness(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(B, True)
    assert marks.aligned(now=0.2) == 10_000 - LATENESS


def test_a_partition_with_a_backlog_holds_back_even_in_live_mode(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(A, True)
    assert marks.aligned(now=0.2, floor=50_000) == 3_000 - LATENESS


def test_a_caught_up_partition_silent_for_the_idle_timeout_follows_the_newest_event(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(B, True)
    assert marks.aligned(now=0.1 + IDLE - 0.01) == 10_000 - LATENESS
    marks.caught_up(A, True)
    assert marks.aligned(now=0.1 + IDLE) == 10_000
    assert marks.idle(now=0.1 + IDLE)


def test_silence_alone_does_not_make_a_partition_idle(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    assert marks.aligned(now=100.0) == 3_000 - LATENESS
    assert not marks.idle(now=100.0)


def test_in_live_mode_the_wall_clock_moves_quiet_partitions_on(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 9_000, now=0.1)
    marks.caught_up(A, True)
    marks.caught_up(B, True)
    wall = 20_000
    assert marks.aligned(now=0.2) == 10_000 - LATENESS
    assert marks.aligned(now=0.2, floor=wall - LATENESS) == wall - LATENESS


def test_reported_progress_counts_as_reported_and_never_goes_idle() -> None:
    marks = Watermarks(LATENESS, IDLE)
    cases = ("cases", 0)
    marks.track([A], now=0.0)
    marks.track([cases], now=0.0, may_idle=False)
    marks.saw(A, 10_000, now=0.1)
    marks.caught_up(A, True)
    marks.caught_up(cases, True)
    assert marks.aligned(now=50.0) == NEVER
    marks.progress(cases, 8_000, now=50.0)
    assert marks.aligned(now=50.0) == 8_000
    assert marks.aligned(now=50.0, floor=30_000) == 8_000


def test_inputs_are_released_in_time_order_up_to_the_watermark() -> None:
    order = TimeOrder()
    for ts, item in [(30, "c"), (10, "a"), (20, "b"), (40, "d")]:
        order.push(ts, item)
    released, through = order.release(30)
    assert released == [(10, "a"), (20, "b"), (30, "c")]
    assert through == 30
    assert len(order) == 1


def test_inputs_at_one_moment_keep_their_arrival_order() -> None:
    order = TimeOrder()
    for item in "xyz":
        order.push(5, item)
    assert [item for _, item in order.release(5)[0]] == ["x", "y", "z"]


def test_a_limited_release_never_splits_a_moment_and_says_how_far_it_got() -> None:
    order = TimeOrder()
    for ts, item in [(1, "a"), (2, "b"), (2, "c"), (3, "d")]:
        order.push(ts, item)
    released, through = order.release(10, limit=2)
    assert released == [(1, "a"), (2, "b"), (2, "c")]
    assert through == 2
    assert order.release(10) == ([(3, "d")], 10)
