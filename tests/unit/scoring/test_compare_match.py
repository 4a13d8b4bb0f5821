"""A truth is used only with the events of its own city and period."""

import pytest

from scoring.compare_match import CityIdentity, truth_mismatch
from scoring.compare_spans import Period

DAY = 86400
RUN = {"seed": 7, "residents": 300, "start": "2022-03-31T16:00:00Z", "end": "2022-04-07T16:00:00Z", "config_sha256": "ab" * 32}
CITY = CityIdentity.from_mapping(RUN)
PERSONS = ["p000", "p001", "p002"]
SPAN = Period(CITY.period.start, CITY.period.end - 9)


def test_the_same_city_matches():
    assert truth_mismatch(CITY, CITY, PERSONS, PERSONS, SPAN) is None


def test_another_seed_is_refused_naming_both_cities():
    other = CityIdentity.from_mapping({**RUN, "seed": 99, "config_sha256": "cd" * 32})
    reason = truth_mismatch(CITY, other, PERSONS, PERSONS, SPAN)
    assert reason.startswith("the truth is from another city than the events")
    assert "events from seed 7, 300 residents" in reason and "truth from seed 99" in reason and "\n" not in reason


def test_a_shorter_run_is_refused_with_both_periods():
    shorter = CityIdentity.from_mapping({**RUN, "end": "2022-04-03T16:00:00Z", "config_sha256": "cd" * 32})
    reason = truth_mismatch(CITY, shorter, PERSONS, PERSONS, SPAN)
    assert "2022-04-03T16:00:00Z" in reason and "2022-04-07T16:00:00Z" in reason


def test_without_a_name_on_the_events_the_truth_must_cover_their_span():
    shorter = CityIdentity.from_mapping({**RUN, "end": "2022-04-03T16:00:00Z"})
    reason = truth_mismatch(None, shorter, PERSONS, PERSONS, SPAN)
    assert reason == (
        "the truth covers 2022-03-31T16:00:00Z to 2022-04-03T16:00:00Z but the events run from "
        "2022-03-31T16:00:00Z to 2022-04-07T15:59:51Z: it would cut the period; use the truth of the whole run"
    )


def test_persons_of_the_events_missing_from_the_truth_are_refused():
    reason = truth_mismatch(None, None, [*PERSONS, "p300", "p301"], PERSONS, SPAN)
    assert reason == "the truth does not list 2 of the 5 persons in the events (e.g. p300): it is from another city"


def test_residents_without_events_are_fine():
    assert truth_mismatch(None, None, PERSONS[:1], PERSONS, SPAN) is None


def test_a_period_beyond_the_truth_is_refused():
    later = Period(CITY.period.start + DAY, CITY.period.end + DAY)
    assert "reaches beyond the truth's" in truth_mismatch(None, CITY, PERSONS, PERSONS, SPAN, later)
    inside = Period(CITY.period.start + DAY, CITY.period.end - DAY)
    assert truth_mismatch(None, CITY, PERSONS, PERSONS, SPAN, inside) is None


@pytest.mark.parametrize(
    "broken",
    [{k: v for k, v in RUN.items() if k != "seed"}, {**RUN, "residents": "300"}, {**RUN, "start": 5}, {**RUN, "end": "soon"}],
)
def test_a_broken_run_description_is_a_value_error(broken):
    with pytest.raises(ValueError):
        CityIdentity.from_mapping(broken)
