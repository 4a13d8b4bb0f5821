"""Event time in the stream: per-partition watermarks, quiet partitions, what a catch-up report vouches for, live mode, time order."""

from __future__ import annotations

import pytest

from streams.eventtime import NEVER, Reports, TimeOrder, Watermarks

LATENESS = 600
IDLE = 2.0
A, B = ("pings", 0), ("pings", 1)
ANYTHING = 10**9
"""What a report asked for after the worker had read everything in a test vouches for."""


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
    marks.caught_up(B, ANYTHING)
    assert marks.aligned(now=0.2) == 10_000 - LATENESS


def test_a_partition_with_a_backlog_holds_back_even_in_live_mode(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(A, ANYTHING)
    assert marks.aligned(now=0.2, floor=50_000) == 3_000 - LATENESS


def test_a_caught_up_partition_silent_for_the_idle_timeout_follows_the_newest_event(marks: Watermarks) -> None:
    marks.saw(A, 10_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(B, ANYTHING)
    assert marks.aligned(now=0.1 + IDLE - 0.01) == 10_000 - LATENESS
    marks.caught_up(A, ANYTHING)
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
    marks.caught_up(A, ANYTHING)
    marks.caught_up(B, ANYTHING)
    wall = 20_000
    assert marks.aligned(now=0.2) == 10_000 - LATENESS
    assert marks.aligned(now=0.2, floor=wall - LATENESS) == wall - LATENESS


def test_reported_progress_counts_as_reported_and_never_goes_idle() -> None:
    marks = Watermarks(LATENESS, IDLE)
    cases = ("cases", 0)
    marks.track([A], now=0.0)
    marks.track([cases], now=0.0, may_idle=False)
    marks.saw(A, 10_000, now=0.1)
    marks.caught_up(A, ANYTHING)
    marks.caught_up(cases, ANYTHING)
    assert marks.aligned(now=50.0) == NEVER
    marks.progress(cases, 8_000, now=50.0)
    assert marks.aligned(now=50.0) == 8_000
    assert marks.aligned(now=50.0, floor=30_000) == 8_000


def test_a_caught_up_partition_counts_only_as_far_as_its_report_vouches(marks: Watermarks) -> None:
    # B was reported at its end before the worker read A's events past 9_000: a record of B
    # older than those may still be on its way, so B holds the watermark at 9_000 - lateness.
    marks.saw(A, 20_000, now=0.1)
    marks.saw(B, 3_000, now=0.1)
    marks.caught_up(B, 9_000)
    assert marks.aligned(now=0.2) == 9_000 - LATENESS
    marks.caught_up(A, ANYTHING)
    assert marks.aligned(now=0.1 + IDLE) == 9_000
    marks.caught_up(B, None)
    assert marks.aligned(now=0.1 + IDLE) == 3_000 - LATENESS


def test_a_report_vouches_for_what_was_read_before_the_answer_preceding_it() -> None:
    reports = Reports()
    pings, visits = ("pings", 0), ("visits", 0)
    reports.saw(at=1_000.0, newest=5_000)
    assert reports.vouched(visits, answered_at=1_050.0) == NEVER, "one answer: when it was asked for is unknown"
    reports.saw(at=1_100.0, newest=7_000)
    assert reports.vouched(visits, answered_at=1_050.0) == NEVER, "the same answer again"
    reports.saw(at=1_200.0, newest=9_000)
    # Asked for after the answer at 1_050, by when the worker had read up to 5_000 only.
    assert reports.vouched(visits, answered_at=1_300.0) == 5_000
    reports.saw(at=1_400.0, newest=11_000)
    assert reports.vouched(visits, answered_at=1_450.0) == 9_000
    assert reports.vouched(pings, answered_at=None) == NEVER, "no answer yet"


def test_a_report_vouches_for_nothing_the_worker_read_at_the_moment_of_the_answer_before_it() -> None:
    reports = Reports()
    source = ("visits", 0)
    reports.vouched(source, answered_at=2_000.0)
    reports.saw(at=2_000.0, newest=8_000)
    assert reports.vouched(source, answered_at=2_100.0) == NEVER


def test_reports_forget_only_what_no_answer_in_use_can_ask_about() -> None:
    reports = Reports()
    slow, fast = ("visits", 0), ("pings", 0)
    reports.saw(at=5.0, newest=100)
    reports.vouched(slow, answered_at=6.0)
    assert reports.vouched(slow, answered_at=7.0) == 100
    reports.vouched(fast, answered_at=7.0)
    for step in range(1, 50):
        reports.saw(at=10.0 + step, newest=100 + step)
        assert reports.vouched(fast, answered_at=10.5 + step) == (100 + step - 1 if step > 1 else 100)
    # The slow partition's next answer was asked for after its answer at 7.0.
    assert reports.vouched(slow, answered_at=70.0) == 100
    assert reports.vouched(slow, answered_at=71.0) == 149


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
