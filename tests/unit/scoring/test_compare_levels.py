"""Level shares over time and the disagreement between rule sets, without ground truth."""

import pandas as pd
import pytest

from scoring import compare_levels as c
from scoring.compare_spans import Period, level_spans

H = 3600
PERIOD = Period(0, 48 * H)


def spans_of(*changes):
    frame = pd.DataFrame(
        [(person, hour * H, level, tuple(rules)) for person, hour, level, rules in changes],
        columns=["person", "at", "level", "reasons"],
    )
    return level_spans(frame, PERIOD)


# Under the baseline a is a close contact (red 10-30 h) and b a companion (yellow 5-15 h);
# the candidate scores only a, yellow from 20 h on.
BASELINE = spans_of(
    ("a", 10, "red", ["close_contact"]),
    ("a", 30, "green", []),
    ("b", 5, "yellow", ["companion"]),
    ("b", 15, "green", []),
)
CANDIDATE = spans_of(("a", 20, "yellow", ["exposure_score"]))


def test_level_shares_weight_each_level_by_time_and_sum_to_one():
    shares = c.level_shares(BASELINE, population=4, period=PERIOD, step=24 * H)
    assert shares["start"].tolist() == [0, 24 * H]
    # day one: a red 14 h, b yellow 10 h, of 4 persons x 24 h
    assert shares.loc[0, "red"] == pytest.approx(14 / 96)
    assert shares.loc[0, "yellow"] == pytest.approx(10 / 96)
    assert shares.loc[1, "red"] == pytest.approx(6 / 96)
    assert shares[["green", "yellow", "red"]].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_level_shares_need_a_population():
    with pytest.raises(ValueError, match="population"):
        c.level_shares(BASELINE, population=0, period=PERIOD)


def test_level_metrics_count_restricted_persons_and_days():
    assert c.persons_restricted(BASELINE) == 2
    assert c.yellow_days(BASELINE) == pytest.approx(10 / 24)
    assert c.red_days(BASELINE) == pytest.approx(20 / 24)


def test_aligned_levels_cut_both_timelines_at_every_change():
    aligned = c.aligned_levels(BASELINE, CANDIDATE, PERIOD)
    a = aligned[aligned["person"] == "a"]
    assert [(s // H, e // H, bl, lv) for s, e, bl, lv in a[["start", "end", "baseline_level", "level"]].itertuples(index=False)] == [
        (0, 10, "green", "green"),
        (10, 20, "red", "green"),
        (20, 30, "red", "yellow"),
        (30, 48, "green", "yellow"),
    ]
    b = aligned[aligned["person"] == "b"]
    assert b["level"].unique().tolist() == ["green"] and b["reasons"].unique().tolist() == ["none"]


def test_disagreements_group_persons_and_hours_by_the_reasons_on_each_side():
    table = c.disagreements({"base": BASELINE, "cand": CANDIDATE}, PERIOD, baseline="base")
    got = {
        (row.baseline_level, row.baseline_reasons, row.level, row.reasons): (row.persons, row.person_hours)
        for row in table.itertuples()
    }
    assert got == {
        ("green", "none", "yellow", "exposure_score"): (1, 18.0),
        ("red", "close_contact", "green", "none"): (1, 10.0),
        ("red", "close_contact", "yellow", "exposure_score"): (1, 10.0),
        ("yellow", "companion", "green", "none"): (1, 10.0),
    }
    assert table["person_hours"].tolist()[0] == 18.0 and set(table["rule_set"]) == {"cand"}


def test_a_rule_set_agrees_with_itself():
    assert c.disagreements({"base": BASELINE, "same": BASELINE}, PERIOD, baseline="base").empty
    assert c.persons_differing(BASELINE, BASELINE, PERIOD) == 0


def test_persons_differing_counts_each_person_once():
    assert c.persons_differing(BASELINE, CANDIDATE, PERIOD) == 2


def test_example_persons_are_the_longest_disagreements_first():
    spans = {"base": BASELINE, "cand": CANDIDATE}
    assert c.example_persons(spans, PERIOD, "base", count=5) == ["a", "b"]
    assert c.example_persons(spans, PERIOD, "base", count=1) == ["a"]
    assert c.example_persons({"base": BASELINE}, PERIOD, "base") == []


def test_example_timelines_show_a_never_changed_person_green_all_along():
    table = c.example_timelines({"base": BASELINE, "cand": CANDIDATE}, ["b"], PERIOD)
    assert [(r.rule_set, r.start // H, r.end // H, r.level) for r in table.itertuples()] == [
        ("base", 0, 5, "green"),
        ("base", 5, 15, "yellow"),
        ("base", 15, 48, "green"),
        ("cand", 0, 48, "green"),
    ]
