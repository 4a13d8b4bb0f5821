"""Each backtest metric on a tiny hand-made truth whose answers can be counted on fingers.

The story, in hours over the period [0 h, 100 h):
- caught:    infected at 10, infectious 30-60; red (close contact) 20-70.
- late:      infected at 10, infectious 20-50; yellow 40-50, red 50-80.
- missed:    infected at 50, infectious 60-90; never flagged.
- imported:  infected at -50 (before the period), infectious -10 to 15; never flagged.
- bystander: never infected; yellow 0-24, red 70-82.
- untouched: never infected, never flagged (not in the timeline).
- stranger:  red throughout, but not in the truth: left out of every figure.
"""

import numpy as np
import pandas as pd
import pytest

from scoring import compare_truth as m
from scoring.compare_spans import Period, level_spans

H = 3600
DAY = 86400
PERIOD = Period(0, 100 * H)
NEVER = None

TRUTH = pd.DataFrame(
    [
        ("caught", 10, 30, 60),
        ("late", 10, 20, 50),
        ("missed", 50, 60, 90),
        ("imported", -50, -10, 15),
        ("bystander", NEVER, NEVER, NEVER),
        ("untouched", NEVER, NEVER, NEVER),
    ],
    columns=["person", "infected_at", "infectious_from", "infectious_until"],
)
TRUTH[["infected_at", "infectious_from", "infectious_until"]] = TRUTH[["infected_at", "infectious_from", "infectious_until"]].astype(float) * H

CHANGES = [
    ("caught", 20, "red", ("close_contact",)),
    ("caught", 70, "green", ()),
    ("late", 40, "yellow", ("fever_clinic",)),
    ("late", 50, "red", ("confirmed_case",)),
    ("late", 80, "green", ()),
    ("bystander", 0, "yellow", ("companion",)),
    ("bystander", 24, "green", ()),
    ("bystander", 70, "red", ("close_contact",)),
    ("bystander", 82, "green", ()),
    ("stranger", 0, "red", ("confirmed_case",)),
]


def spans_of(changes):
    frame = pd.DataFrame(
        [(person, hour * H, level, reasons) for person, hour, level, reasons in changes],
        columns=["person", "at", "level", "reasons"],
    )
    return level_spans(frame, PERIOD)


@pytest.fixture(scope="module")
def outcomes():
    return m.person_outcomes(spans_of(CHANGES), m.truth_frame(TRUTH), PERIOD)


def test_outcomes_list_every_resident_of_the_truth_and_nobody_else(outcomes):
    assert sorted(outcomes.index) == sorted(TRUTH["person"])


def test_outcomes_cut_infectious_and_latent_windows_to_the_period(outcomes):
    assert outcomes.loc["imported", "infectious_s"] == 15 * H
    assert outcomes.loc["imported", "latent_s"] == 0
    assert outcomes.loc["caught", "latent_s"] == 20 * H and outcomes.loc["caught", "latent_flagged_s"] == 10 * H


def test_infectious_residents_count_windows_overlapping_the_period(outcomes):
    assert m.infectious_persons(outcomes) == 4


def test_flagged_while_infectious_is_the_share_restricted_at_some_infectious_moment(outcomes):
    assert m.flagged_while_infectious(outcomes) == m.Ratio(2, 4, "persons")


def test_flagged_before_infectious_counts_a_restriction_between_infection_and_infectiousness(outcomes):
    # caught (red from 20, infectious from 30) of caught, late and missed; imported's latency was before the period
    assert m.flagged_before_infectious(outcomes) == m.Ratio(1, 3, "persons")


def test_infectious_hours_green_sum_the_unrestricted_infectious_time(outcomes):
    # caught 0, late 20-40, missed 60-90, imported 0-15
    assert m.infectious_hours_green(outcomes) == pytest.approx(20 + 30 + 15)
    share = m.infectious_hours_green_share(outcomes)
    assert (share.part, share.whole, share.counted) == (pytest.approx(65), pytest.approx(30 + 30 + 30 + 15), "person-hours")
    assert share.value == pytest.approx(65 / (30 + 30 + 30 + 15))


def test_infection_to_flag_is_measured_for_residents_infected_in_the_period_and_flagged(outcomes):
    # caught: 20 - 10 = 10 h; late: 40 - 10 = 30 h; missed never flagged; imported infected before the period
    assert outcomes["first_flag_delay_s"].dropna().sort_values().tolist() == [10 * H, 30 * H]
    assert m.first_flag_delay_median(outcomes) == pytest.approx(20)
    assert m.first_flag_delay_p90(outcomes) == pytest.approx(10 + 0.9 * 20)


def test_a_resident_already_restricted_when_infected_is_flagged_without_delay():
    truth = m.truth_frame(pd.DataFrame({"person": ["q"], "infected_at": [30.0 * H], "infectious_from": [40.0 * H], "infectious_until": [60.0 * H]}))
    outcomes = m.person_outcomes(spans_of([("q", 20, "red", ("close_contact",))]), truth, PERIOD)
    assert m.first_flag_delay_median(outcomes) == 0


def test_a_restriction_that_ended_before_the_infection_does_not_count_as_a_flag():
    truth = m.truth_frame(pd.DataFrame({"person": ["q"], "infected_at": [30.0 * H], "infectious_from": [40.0 * H], "infectious_until": [60.0 * H]}))
    outcomes = m.person_outcomes(spans_of([("q", 5, "yellow", ("companion",)), ("q", 25, "green", ())]), truth, PERIOD)
    assert np.isnan(m.first_flag_delay_median(outcomes))
    assert m.flagged_before_infectious(outcomes).value == 0 and m.flagged_while_infectious(outcomes).value == 0


def test_restricted_days_of_the_never_infected_count_only_residents_the_truth_never_infected(outcomes):
    assert m.yellow_days_never_infected(outcomes) == pytest.approx(24 / 24)
    assert m.red_days_never_infected(outcomes) == pytest.approx(12 / 24)


def test_restricted_days_per_infection_divide_everyones_restriction_by_the_infected(outcomes):
    # caught 50 h, late 40 h, bystander 36 h over 4 infected residents
    assert m.restricted_days_per_infection(outcomes) == pytest.approx((50 + 40 + 36) / 24 / 4)


def test_precision_is_the_share_of_restricted_time_on_infected_residents(outcomes):
    share = m.precision(outcomes)
    assert (share.part, share.whole) == (pytest.approx(90 / 24), pytest.approx(126 / 24)) and share.counted == "person-days"
    assert share.value == pytest.approx(90 / 126)


def test_shares_without_a_denominator_are_not_a_number():
    empty = m.person_outcomes(spans_of([]), m.truth_frame(TRUTH[TRUTH["infected_at"].isna()]), PERIOD)
    for metric in (m.flagged_while_infectious, m.flagged_before_infectious, m.infectious_hours_green_share, m.precision):
        assert np.isnan(metric(empty).value) and metric(empty).whole == 0, metric.__name__
    assert m.infectious_hours_green(empty) == 0 and np.isnan(m.first_flag_delay_p90(empty))


def test_every_metric_has_a_definition_a_reader_can_check():
    for metric in m.TRUTH_METRICS:
        assert len(metric.definition) > 40, metric.label


def test_truth_frame_reads_the_simulator_timestamps_as_epoch_seconds():
    stamps = pd.to_datetime(["2022-04-01T00:00:00Z", None], utc=True)
    truth = pd.DataFrame({"person": ["a", "b"], "infected_at": stamps, "infectious_from": stamps, "infectious_until": stamps, "role": ["x", "y"]})
    frame = m.truth_frame(truth)
    assert frame.columns.tolist() == ["person", "infected_at", "infectious_from", "infectious_until"]
    assert frame["infected_at"].iloc[0] == 1648771200 and np.isnan(frame["infected_at"].iloc[1])


@pytest.mark.parametrize(
    ("truth", "problem"),
    [
        (pd.DataFrame({"person": ["a"], "infected_at": [1.0]}), "lacks column"),
        (pd.DataFrame({"person": ["a", "a"], "infected_at": [1.0, 2.0], "infectious_from": 2.0, "infectious_until": 3.0}), "twice"),
        (pd.DataFrame({"person": ["a"], "infected_at": pd.to_datetime(["2022-04-01"]), "infectious_from": 2.0, "infectious_until": 3.0}), "time zone"),
    ],
)
def test_truth_frame_rejects_a_truth_it_cannot_read_safely(truth, problem):
    with pytest.raises(ValueError, match=problem):
        m.truth_frame(truth)


def test_leak_and_cost_per_day_add_up_to_the_period_totals(outcomes):
    series = m.leak_and_cost(spans_of(CHANGES), m.truth_frame(TRUTH), PERIOD, DAY)
    assert series["start"].tolist() == [0, DAY, 2 * DAY, 3 * DAY, 4 * DAY]
    assert series["infectious_green_hours"].sum() == pytest.approx(m.infectious_hours_green(outcomes))
    assert series["restricted_days"].sum() == pytest.approx((50 + 40 + 36) / 24)
    # first day: imported 0-15 and late 20-24 green while infectious; bystander yellow all day, caught red 20-24
    assert series["infectious_green_hours"].iloc[0] == pytest.approx(15 + 4)
    assert series["restricted_days"].iloc[0] == pytest.approx((24 + 4) / 24)
