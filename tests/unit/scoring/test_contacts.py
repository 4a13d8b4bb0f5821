"""Contacts with cases, on hand-made trajectories: one ping every few minutes,
positions at the centres of chosen H3 cells."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.contacts import in_sorted
from scoring.exposure import CaseWindow, ContactSpec, Exposure
from scoring.presence import PresenceIndex

DAY = 86_400
T0 = 1_648_771_200  # 2022-04-01T00:00:00Z
MIN = 60
CLOSE = ContactSpec("close_contact", 10, 30 * MIN, True, 14 * DAY)
COMPANION = ContactSpec("companion", 8, 30 * MIN, False, 14 * DAY)

HOME = h3i.latlng_to_cell(30.6, 114.3, CLOSE.resolution)
NEXT_DOOR = sorted(set(h3i.grid_disk(HOME, 1)) - {HOME})[0]
TWO_AWAY = sorted(set(h3i.grid_disk(HOME, 2)) - set(h3i.grid_disk(HOME, 1)))[0]
FAR = h3i.latlng_to_cell(30.7, 114.4, CLOSE.resolution)
ELSEWHERE = h3i.latlng_to_cell(30.5, 114.2, CLOSE.resolution)


def at(cell: int) -> tuple[float, float]:
    return h3i.cell_to_latlng(cell)


def case(ref: str = "case-1", person: str = "patient", start: int = T0, until: int | None = None, **kw) -> CaseWindow:
    return CaseWindow(ref, person, start, until, **kw)


@pytest.fixture
def index() -> PresenceIndex:
    return PresenceIndex([CLOSE, COMPANION], retention_s=14 * DAY)


def walk(index: PresenceIndex, person: str, *steps: tuple[int, int]) -> list[Exposure]:
    """Ping at (minute after 08:00, cell) for each step, one at a time."""
    out = []
    for minute, cell in steps:
        out += index.ingest(person, T0 + 8 * 3600 + minute * MIN, *at(cell))
    return out


def current(index: PresenceIndex, kind: str = "close_contact") -> dict[str, Exposure]:
    return {e.person: e for e in index.exposures() if e.kind == kind}


def test_fifteen_minutes_in_the_same_cell_are_counted_as_exactly_fifteen(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (15, HOME), (30, FAR))
    assert current(index)["neighbour"].minutes == 15.0


def test_arriving_one_minute_later_counts_fourteen_minutes(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (16, HOME), (30, FAR))
    assert current(index)["neighbour"].minutes == 14.0


def test_contact_minutes_add_up_over_separate_meetings(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (10, FAR), (60, HOME), (65, FAR))
    walk(index, "neighbour", (0, HOME), (10, ELSEWHERE), (60, HOME), (70, ELSEWHERE))
    exposure = current(index)["neighbour"]
    assert (exposure.minutes, exposure.first_at, exposure.last_at) == (15.0, T0 + 8 * 3600, T0 + 8 * 3600 + 65 * MIN)


def test_a_neighbouring_cell_counts_when_the_spec_includes_neighbours(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (20, FAR))
    walk(index, "next_door", (0, NEXT_DOOR), (20, FAR))
    walk(index, "two_away", (0, TWO_AWAY), (20, FAR))
    assert set(current(index)) == {"next_door"}
    assert current(index)["next_door"].minutes == 20.0


def test_a_neighbouring_cell_does_not_count_when_the_spec_excludes_neighbours():
    index = PresenceIndex([ContactSpec("close_contact", 10, 30 * MIN, False, 14 * DAY)], retention_s=14 * DAY)
    index.case(case())
    walk(index, "patient", (0, HOME), (20, FAR))
    walk(index, "next_door", (0, NEXT_DOOR), (20, FAR))
    assert current(index) == {}


def test_neighbour_copies_never_count_the_same_minutes_twice(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (10, NEXT_DOOR), (20, FAR))
    walk(index, "neighbour", (0, HOME), (20, FAR))
    assert current(index)["neighbour"].minutes == 20.0


def test_sparse_pings_stand_for_presence_only_up_to_the_maximum_gap(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (240, FAR))
    walk(index, "neighbour", (0, HOME), (240, FAR))
    assert current(index)["neighbour"].minutes == 30.0


def test_a_last_ping_counts_once_the_watermark_passes_its_cap(index):
    index.case(case())
    walk(index, "patient", (0, HOME))
    walk(index, "neighbour", (0, HOME))
    assert index.exposures() == []
    assert index.advance(T0 + 8 * 3600 + 29 * MIN) == []
    found = index.advance(T0 + 8 * 3600 + 30 * MIN)
    assert {(e.person, e.kind, e.minutes) for e in found} == {
        ("neighbour", "close_contact", 30.0),
        ("neighbour", "companion", 30.0),
    }


def test_an_open_case_keeps_finding_contacts_who_come_later(index):
    index.case(case())
    walk(index, "patient", *[(m, HOME) for m in range(0, 121, 10)])
    first = walk(index, "visitor", (60, HOME), (70, HOME))
    more = walk(index, "visitor", (80, HOME), (90, FAR))
    assert [e.minutes for e in first if e.kind == "close_contact"] == [10.0]
    assert [e.minutes for e in more if e.kind == "close_contact"] == [20.0, 30.0]


def test_a_case_arriving_after_the_visitor_finds_the_visitor_backward(index):
    walk(index, "visitor", (60, HOME), (90, FAR))
    walk(index, "patient", *[(m, HOME) for m in range(0, 121, 10)])
    found = index.case(case())
    assert [(e.person, e.minutes) for e in found if e.kind == "close_contact"] == [("visitor", 30.0)]


def test_an_isolated_case_stops_exposing_others(index):
    index.case(case(until=T0 + 8 * 3600 + 30 * MIN))
    walk(index, "patient", *[(m, HOME) for m in range(0, 121, 10)])
    walk(index, "visitor", (0, HOME), (60, HOME), (90, FAR))
    assert current(index)["visitor"].minutes == 30.0


def test_a_late_positive_test_creates_exposures_in_the_past(index):
    walk(index, "patient", (0, HOME), (45, FAR))
    walk(index, "neighbour", (0, HOME), (45, ELSEWHERE))
    index.advance(T0 + 3 * DAY)
    found = index.case(case(start=T0 - 2 * DAY))
    close = [e for e in found if e.kind == "close_contact"]
    assert [(e.person, e.minutes, e.first_at, e.minutes_by_day) for e in close] == [
        ("neighbour", 30.0, T0 + 8 * 3600, ((2, 30.0),))
    ]


def test_presence_before_the_infectious_window_does_not_count(index):
    walk(index, "patient", (0, HOME), (60, FAR))
    walk(index, "neighbour", (0, HOME), (60, FAR))
    index.case(case(start=T0 + 8 * 3600 + 20 * MIN))
    assert current(index)["neighbour"].minutes == 10.0


def test_minutes_are_split_by_day_from_the_start_of_the_infectious_window(index):
    start = T0 + 8 * 3600 + 10 * MIN
    index.case(case(start=start))
    next_morning = 24 * 60  # minutes after 08:00: ten minutes before the window's first day ends
    walk(index, "patient", (next_morning, HOME), (next_morning + 30, FAR))
    walk(index, "neighbour", (next_morning, HOME), (next_morning + 30, FAR))
    assert current(index)["neighbour"].minutes_by_day == ((0, 10.0), (1, 20.0))


def test_retracting_a_case_withdraws_every_exposure_it_caused(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    walk(index, "next_door", (0, NEXT_DOOR), (30, FAR))
    withdrawn = index.case(case(retracted=True))
    assert {(e.person, e.kind) for e in withdrawn} == {
        ("neighbour", "close_contact"),
        ("neighbour", "companion"),
        ("next_door", "close_contact"),
        ("next_door", "companion"),
    }
    assert all(e.retracted for e in withdrawn)
    assert index.exposures() == []


def test_a_retracted_case_exposes_nobody_who_comes_later(index):
    index.case(case())
    index.case(case(retracted=True))
    walk(index, "patient", (0, HOME), (30, FAR))
    assert walk(index, "neighbour", (0, HOME), (30, FAR)) == []


def test_a_case_is_never_its_own_contact_and_is_never_named(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    for exposure in index.exposures():
        assert exposure.person == "neighbour"
        assert exposure.source == "case-1"
        assert "patient" not in repr(exposure)


def test_two_cases_give_one_exposure_each(index):
    index.case(case("case-1", "patient"))
    index.case(case("case-2", "other_patient"))
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "other_patient", (0, HOME), (20, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    by_pair = {(e.person, e.source): e.minutes for e in index.exposures() if e.kind == "close_contact"}
    assert by_pair == {
        ("neighbour", "case-1"): 30.0,
        ("neighbour", "case-2"): 20.0,
        ("other_patient", "case-1"): 20.0,
        ("patient", "case-2"): 20.0,
    }


def test_exposure_ids_are_deterministic_per_person_kind_and_source(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    assert current(index)["neighbour"].exposure_id == Exposure.make_id("neighbour", "close_contact", "case-1")


def test_the_same_ping_twice_changes_nothing(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    before = index.exposures()
    assert walk(index, "neighbour", (0, HOME), (30, FAR)) == []
    assert index.exposures() == before


def test_a_late_ping_that_cuts_a_stay_short_lowers_the_minutes(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    corrected = walk(index, "neighbour", (10, FAR))
    assert [e.minutes for e in corrected if e.kind == "close_contact"] == [10.0]


def test_a_late_ping_that_removes_all_contact_retracts_the_exposure(index):
    index.case(case())
    walk(index, "patient", (10, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, FAR))
    corrected = walk(index, "neighbour", (10, FAR))
    assert {(e.kind, e.retracted) for e in corrected} == {("close_contact", True), ("companion", True)}
    assert index.exposures() == []


def test_an_updated_window_recounts_the_contacts(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (60, FAR))
    walk(index, "neighbour", (0, HOME), (60, FAR))
    changed = index.case(case(until=T0 + 8 * 3600 + 10 * MIN))
    assert [e.minutes for e in changed if e.kind == "close_contact"] == [10.0]


def test_an_empty_infectious_window_is_refused(index):
    with pytest.raises(ValueError, match="infectious_until"):
        index.case(case(until=T0))


def test_backward_contacts_are_known_when_the_case_became_known(index):
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, ELSEWHERE))
    confirmed = T0 + 2 * DAY
    found = index.case(case(), known_at=confirmed)
    assert {e.known_at for e in found} == {confirmed}


def test_forward_contacts_are_known_at_their_last_contact(index):
    index.case(case(), known_at=T0)
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (20, ELSEWHERE))
    assert current(index)["neighbour"].known_at == T0 + 8 * 3600 + 20 * MIN


def test_a_case_stays_known_from_the_first_time_it_was_told(index):
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, ELSEWHERE))
    index.case(case(), known_at=T0 + DAY)
    index.case(case(until=T0 + 3 * DAY), known_at=T0 + 3 * DAY)
    assert current(index)["neighbour"].known_at == T0 + DAY


def test_exposures_of_a_case_not_told_when_it_became_known_carry_no_known_at(index):
    index.case(case())
    walk(index, "patient", (0, HOME), (30, FAR))
    walk(index, "neighbour", (0, HOME), (30, ELSEWHERE))
    assert current(index)["neighbour"].known_at is None


def test_a_retraction_is_accepted_whatever_window_it_names(index):
    index.case(case())
    assert index.case(case(until=T0, retracted=True)) == []
    assert index.stats().sources == 0


@given(
    values=st.lists(st.integers(-2**62, 2**62), max_size=40),
    members=st.sets(st.integers(-2**62, 2**62), max_size=12),
    shared=st.lists(st.integers(0, 39), max_size=10),
)
def test_membership_in_the_case_persons_is_numpys_isin(values, members, shared):
    values = np.array(values, dtype=np.int64)
    members = set(members) | {int(values[i]) for i in shared if i < len(values)}
    sorted_set = np.array(sorted(members), dtype=np.int64)
    assert (in_sorted(values, sorted_set) == np.isin(values, sorted_set)).all()
