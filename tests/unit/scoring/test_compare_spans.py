"""Timelines become spans over the observation period; person-time is summed exactly per bucket."""

import numpy as np
import pytest

from scoring.compare_spans import Period, bucket_edges, level_spans, person_time, reason_key, timeline_frame
from tests.unit.scoring.frames import H, timeline

PERIOD = Period(0, 100 * H)


def rows(spans):
    return [(p, s // H, e // H, level, reasons) for p, s, e, level, reasons in spans.itertuples(index=False)]


def test_timeline_frame_reads_the_replay_json_objects():
    frame = timeline_frame(
        [
            {
                "person": "p1",
                "at": "2022-04-01T00:00:00Z",
                "level": "red",
                "reasons": [{"rule": "close_contact", "since": "2022-04-01T00:00:00Z", "until": None}],
                "rule_set": "default@1.0.0",
            },
            {"person": "p1", "at": "2022-04-15T00:00:00Z", "level": "green", "reasons": [], "rule_set": "default@1.0.0"},
        ]
    )
    assert frame.to_dict("records") == [
        {"person": "p1", "at": 1648771200, "level": "red", "reasons": ("close_contact",)},
        {"person": "p1", "at": 1648771200 + 14 * 86400, "level": "green", "reasons": ()},
    ]
    assert frame["at"].dtype == np.int64


def test_an_empty_timeline_frame_still_has_the_columns():
    assert list(timeline_frame([]).columns) == ["person", "at", "level", "reasons"]


def test_reason_key_is_order_free_and_names_the_absence_of_reasons():
    assert reason_key(["companion", "close_contact", "companion"]) == "close_contact+companion"
    assert reason_key([]) == "none"


def test_a_person_is_green_until_the_first_change_and_the_last_span_ends_with_the_period():
    spans = level_spans(timeline(("a", 10, "red", ["close_contact"]), ("a", 30, "green", [])), PERIOD)
    assert rows(spans) == [("a", 0, 10, "green", "none"), ("a", 10, 30, "red", "close_contact"), ("a", 30, 100, "green", "none")]


def test_the_level_at_the_period_start_is_the_last_change_before_it():
    changes = timeline(("a", -20, "yellow", ["companion"]), ("a", -5, "red", ["confirmed_case"]), ("a", 40, "green", []))
    assert rows(level_spans(changes, PERIOD)) == [("a", 0, 40, "red", "confirmed_case"), ("a", 40, 100, "green", "none")]


def test_a_change_exactly_at_the_period_start_opens_the_period():
    assert rows(level_spans(timeline(("a", 0, "yellow", ["companion"])), PERIOD)) == [("a", 0, 100, "yellow", "companion")]


def test_changes_at_or_after_the_period_end_are_ignored():
    changes = timeline(("a", 50, "red", ["confirmed_case"]), ("a", 100, "green", []), ("b", 120, "red", ["confirmed_case"]))
    assert rows(level_spans(changes, PERIOD)) == [("a", 0, 50, "green", "none"), ("a", 50, 100, "red", "confirmed_case")]


def test_of_two_changes_in_the_same_second_the_last_holds():
    changes = timeline(("a", 50, "yellow", ["companion"]), ("a", 50, "red", ["close_contact", "companion"]))
    assert rows(level_spans(changes, PERIOD)) == [("a", 0, 50, "green", "none"), ("a", 50, 100, "red", "close_contact+companion")]


def test_spans_of_several_persons_are_kept_apart_whatever_the_row_order():
    changes = timeline(("b", 20, "red", ["close_contact"]), ("a", 10, "yellow", ["companion"]), ("b", 60, "green", []))
    assert rows(level_spans(changes, PERIOD)) == [
        ("a", 0, 10, "green", "none"),
        ("a", 10, 100, "yellow", "companion"),
        ("b", 0, 20, "green", "none"),
        ("b", 20, 60, "red", "close_contact"),
        ("b", 60, 100, "green", "none"),
    ]


def test_an_empty_timeline_gives_no_spans():
    spans = level_spans(timeline(), PERIOD)
    assert spans.empty and list(spans.columns) == ["person", "start", "end", "level", "reasons"]


def test_a_period_must_end_after_it_starts():
    with pytest.raises(ValueError, match="must end after it starts"):
        Period(10, 10)


def test_bucket_edges_cut_the_last_bucket_at_the_period_end():
    assert bucket_edges(Period(0, 25), 10).tolist() == [0, 10, 20, 25]
    with pytest.raises(ValueError, match="positive"):
        bucket_edges(Period(0, 25), 0)


def test_person_time_splits_intervals_exactly_across_buckets():
    edges = np.array([0, 10, 20, 30])
    starts, ends = np.array([5, 0, 12, 40]), np.array([15, 30, 14, 50])
    assert person_time(starts, ends, edges).tolist() == [15.0, 17.0, 10.0]


def test_person_time_stays_exact_at_epoch_scale():
    origin = 1_648_771_200
    edges = origin + np.arange(0, 31 * 86400, 86400)
    starts = origin + np.arange(0, 200_000) * 7
    ends = starts + 1
    counted = person_time(starts, ends, edges)
    assert counted.sum() == 200_000 and counted[0] == 86400 // 7 + 1
