"""Several cities, one summary: means, Student-t intervals and paired differences that can be checked by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.compare import Period, compare
from scoring.compare_cities import across_cities, mean_intervals, student_t_quantile
from tests.unit.scoring.frames import H, timeline, truth

PERIOD = Period(0, 48 * H)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.95, 1, 6.313751515), (0.95, 4, 2.131846786), (0.95, 29, 1.699127027), (0.975, 9, 2.262157163), (0.95, 1e6, 1.644855)],
)
def test_t_quantiles_match_the_published_tables(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=2e-6)
    assert student_t_quantile(1 - p, df) == pytest.approx(-expected, abs=2e-6)


@given(st.floats(0.001, 0.999), st.floats(0.5, 500))
@settings(max_examples=60, deadline=None)
def test_t_quantiles_are_odd_and_grow_with_p(p, df):
    q = student_t_quantile(p, df)
    assert q == pytest.approx(-student_t_quantile(1 - p, df), abs=1e-7)
    assert student_t_quantile(min(p + 0.0005, 0.9995), df) > q


@pytest.mark.parametrize("bad", [(0.0, 3), (1.0, 3), (0.9, 0), (float("nan"), 3)])
def test_t_quantiles_refuse_what_has_none(bad):
    with pytest.raises(ValueError):
        student_t_quantile(*bad)


def test_the_interval_of_five_values_is_mean_plus_minus_t_times_the_standard_error():
    values = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    row = mean_intervals(values).iloc[0]
    half = 2.131846786 * math.sqrt(2.5) / math.sqrt(5)
    assert (row["mean"], row["cities"]) == (3.0, 5)
    assert (row["low"], row["high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))


def test_a_city_without_a_value_does_not_count_and_one_value_has_no_interval():
    stats = mean_intervals(np.array([[1.0, np.nan], [3.0, 7.0], [np.nan, np.nan]]))
    assert stats["cities"].tolist() == [2, 1]
    assert stats["mean"].tolist() == [2.0, 7.0]
    assert not np.isnan(stats["low"].iloc[0]) and np.isnan(stats["low"].iloc[1]) and np.isnan(stats["high"].iloc[1])


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=12), st.floats(0.5, 0.99))
@settings(max_examples=80, deadline=None)
def test_the_interval_holds_the_mean_and_widens_with_confidence(values, confidence):
    row = mean_intervals(np.array(values)[:, None], confidence).iloc[0]
    wider = mean_intervals(np.array(values)[:, None], (1 + confidence) / 2).iloc[0]
    assert row["mean"] == pytest.approx(np.mean(values), abs=1e-6)
    assert row["low"] <= row["mean"] + 1e-6 and row["mean"] <= row["high"] + 1e-6
    assert wider["high"] - wider["low"] >= row["high"] - row["low"] - 1e-6


# Three cities of four residents; points flags the infected earlier than default in each city.
CITIES = [
    (
        {"default@1.0.0": timeline(("a", 20, "red", ["case"])), "points@1.0.0": timeline(("a", 10, "yellow", ["exposure_score"]))},
        truth(("a", 5, 8, 40), ("b", None, None, None), ("c", None, None, None), ("d", None, None, None)),
    ),
    (
        {"default@1.0.0": timeline(("a", 30, "red", ["case"])), "points@1.0.0": timeline(("a", 14, "yellow", ["exposure_score"]), ("b", 0, "yellow", ["exposure_score"]))},
        truth(("a", 5, 8, 40), ("b", None, None, None), ("c", None, None, None), ("d", None, None, None)),
    ),
    (
        {"default@1.0.0": timeline(("a", 25, "red", ["case"])), "points@1.0.0": timeline(("a", 12, "yellow", ["exposure_score"]))},
        truth(("a", 5, 8, 40), ("b", None, None, None), ("c", None, None, None), ("d", None, None, None)),
    ),
]


@pytest.fixture(scope="module")
def cities():
    comparisons = [compare(timelines, PERIOD, truth=people) for timelines, people in CITIES]
    return across_cities(comparisons, ["seed 1", "seed 2", "seed 3"])


def test_each_metric_gets_a_mean_and_an_interval_per_rule_set(cities):
    summary = cities.summary.set_index(["metric", "rule_set"])
    green = summary.loc[("infectious hours green", "default@1.0.0")]
    # infectious from 8 h, red from 20, 30, 25 h: 12, 22, 17 hours green
    assert (green["mean"], green["cities"]) == (pytest.approx(17), 3)
    half = student_t_quantile(0.95, 2) * 5 / math.sqrt(3)
    assert (green["low"], green["high"]) == (pytest.approx(17 - half), pytest.approx(17 + half))
    assert np.isnan(green["difference"])


def test_differences_are_paired_city_by_city(cities):
    summary = cities.summary.set_index(["metric", "rule_set"])
    change = summary.loc[("infectious hours green", "points@1.0.0")]
    # points: 2, 6, 4 hours green; minus default's 12, 22, 17: -10, -16, -13
    assert change["difference"] == pytest.approx(-13)
    half = student_t_quantile(0.95, 2) * 3 / math.sqrt(3)
    assert (change["difference_low"], change["difference_high"]) == (pytest.approx(-13 - half), pytest.approx(-13 + half))
    assert change["difference_high"] < 0


def test_shares_keep_their_parts_summed_over_the_cities(cities):
    summary = cities.summary.set_index(["metric", "rule_set"])
    flagged = summary.loc[("flagged while infectious", "points@1.0.0")]
    assert (flagged["part"], flagged["whole"], flagged["counted"]) == (3, 3, "persons")
    assert pd.isna(summary.loc[("yellow days", "points@1.0.0"), "whole"])


def test_every_figure_of_every_city_is_kept(cities):
    per_city = cities.per_city
    assert per_city.columns.tolist() == ["city", "metric", "rule_set", "value"]
    assert per_city["city"].unique().tolist() == ["seed 1", "seed 2", "seed 3"]
    restricted = per_city[(per_city["metric"] == "persons ever restricted") & (per_city["rule_set"] == "points@1.0.0")]
    assert restricted["value"].tolist() == [1, 2, 1]


def test_level_shares_and_leak_are_averaged_per_bucket(cities):
    shares = cities.level_shares
    assert shares["rule_set"].unique().tolist() == ["default@1.0.0", "points@1.0.0"]
    yellow = shares[(shares["rule_set"] == "points@1.0.0") & (shares["level"] == "yellow")].set_index("offset")
    # hour 11-12: a is yellow in city 1 (from 10 h), b in city 2 (from 0 h), nobody in city 3 (a from 12 h)
    assert yellow.loc[11 * H, "mean"] == pytest.approx((0.25 + 0.25 + 0) / 3)
    assert yellow.loc[12 * H, "mean"] == pytest.approx(0.25) and yellow.loc[12 * H, "low"] == pytest.approx(0.25)
    assert len(yellow) == 48 and cities.common_start == 0
    leak = cities.leak_and_cost
    assert leak["series"].unique().tolist() == ["infectious_green_hours", "restricted_days"]


def test_cities_must_compare_the_same_rule_sets():
    one = compare(CITIES[0][0], PERIOD, truth=CITIES[0][1])
    other = compare({"points@1.0.0": CITIES[0][0]["points@1.0.0"]}, PERIOD, truth=CITIES[0][1])
    with pytest.raises(ValueError, match="other rule sets"):
        across_cities([one, other], ["a", "b"])
    with pytest.raises(ValueError, match="own name"):
        across_cities([one, one], ["a", "a"])
