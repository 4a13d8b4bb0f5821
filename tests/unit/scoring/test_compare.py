"""`compare`: one call from the rule sets' timelines (and the truth) to every table of a comparison."""

import pandas as pd
import pytest

from scoring.compare import LEVEL_METRICS, Period, compare
from scoring.compare_truth import TRUTH_METRICS
from tests.unit.scoring.frames import H, timeline

PERIOD = Period(0, 48 * H)


TIMELINES = {
    "default@1.0.0": timeline(("a", 10, "red", ["close_contact"]), ("a", 30, "green", []), ("b", 5, "yellow", ["companion"]), ("b", 15, "green", [])),
    "points@1.0.0": timeline(("a", 20, "yellow", ["exposure_score"])),
}
TRUTH = pd.DataFrame(
    {
        "person": ["a", "b", "c", "d"],
        "infected_at": [0.0, None, 12 * H, None],
        "infectious_from": [24.0 * H, None, 20 * H, None],
        "infectious_until": [48.0 * H, None, 40 * H, None],
    }
)


def test_metrics_have_one_column_per_rule_set_in_the_order_given_with_unit_and_definition():
    result = compare(TIMELINES, PERIOD, truth=TRUTH)
    assert result.metrics.columns.tolist() == ["unit", "default@1.0.0", "points@1.0.0", "definition"]
    assert result.metrics.index.tolist() == [m.label for m in LEVEL_METRICS] + ["persons differing from baseline"] + [m.label for m in TRUTH_METRICS]
    assert result.baseline == "default@1.0.0"
    assert result.metrics.loc["persons differing from baseline", "default@1.0.0"] == 0
    assert result.metrics.loc["persons differing from baseline", "points@1.0.0"] == 2
    assert result.metrics.loc["infectious hours green", "default@1.0.0"] == pytest.approx(18 + 20)
    assert result.metrics.loc["infectious hours green", "points@1.0.0"] == pytest.approx(4 + 16)


def test_with_truth_the_population_is_the_residents_and_leak_and_cost_come_per_day():
    result = compare(TIMELINES, PERIOD, truth=TRUTH)
    assert result.population == 4
    leak = result.leak_and_cost
    assert leak.columns.tolist() == ["rule_set", "start", "infectious_green_hours", "restricted_days"]
    assert leak.groupby("rule_set", sort=False)["infectious_green_hours"].sum().tolist() == pytest.approx([38, 20])


def test_without_truth_only_level_figures_are_given_and_the_population_is_who_was_seen():
    result = compare(TIMELINES, PERIOD)
    assert result.leak_and_cost is None
    assert "precision" not in result.metrics.index
    assert result.population == 2
    shares = result.level_shares
    assert shares["rule_set"].unique().tolist() == ["default@1.0.0", "points@1.0.0"]
    assert len(shares) == 2 * 48


def test_an_explicit_population_sets_the_denominator_of_the_shares():
    result = compare(TIMELINES, PERIOD, population=100, share_step=48 * H)
    red = result.level_shares.set_index("rule_set").loc["default@1.0.0", "red"]
    assert red == pytest.approx(20 / (100 * 48))


def test_disagreements_and_examples_are_against_the_first_rule_set():
    result = compare(TIMELINES, PERIOD, examples=1)
    assert set(result.disagreements["rule_set"]) == {"points@1.0.0"}
    assert result.examples["person"].unique().tolist() == ["a"]
    assert result.examples["rule_set"].unique().tolist() == ["default@1.0.0", "points@1.0.0"]


def test_a_comparison_needs_a_timeline():
    with pytest.raises(ValueError, match="at least one"):
        compare({}, PERIOD)


def test_every_share_comes_with_what_it_is_a_share_of():
    result = compare(TIMELINES, PERIOD, truth=TRUTH)
    shares = result.shares.set_index(["metric", "rule_set"])
    share_metrics = result.metrics.index[result.metrics["unit"] == "share"]
    assert sorted(shares.index.get_level_values("metric").unique()) == sorted(share_metrics)
    # a and c are infectious in the period; both rule sets flag a (red 10-30 h, yellow from 20 h), neither flags c
    assert shares.loc[("flagged while infectious", "points@1.0.0"), ["part", "whole", "counted"]].tolist() == [1, 2, "persons"]
    assert shares.loc[("flagged while infectious", "default@1.0.0"), ["part", "whole"]].tolist() == [1, 2]
    for (metric, name), row in shares.iterrows():
        assert result.metrics.loc[metric, name] == pytest.approx(row["part"] / row["whole"])
