"""People: every person's facts settled into level changes, in event-time order, exact to the second."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from scoring.people import People, PersonChange, sorted_changes
from scoring.rules import load_rule_set
from scoring.synthetic import DAY, HOUR, exposure, ping, result, visit
from tests.unit.scoring.records import contact as _contact, lines as _lines

RULES_DIR = Path(__file__).resolve().parents[3] / "rules"
DEFAULT = load_rule_set(RULES_DIR / "default.yaml")
POINTS = load_rule_set(RULES_DIR / "points.yaml")
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z
MINUTE = 60


@pytest.fixture
def people() -> People:
    return People(DEFAULT)


def _levels(changes: list[PersonChange], person: str) -> list[tuple[int, str]]:
    return [(change.at, change.level) for change in changes if change.person == person]


def test_a_person_with_only_pings_is_never_reported_nor_kept(people) -> None:
    for step in range(10):
        assert people.apply_event(ping("walker", T0 + step * 15 * MINUTE)) == []
    assert people.settle(T0 + 30 * DAY) == []
    assert len(people) == 0


def test_a_negative_test_alone_reports_nothing(people) -> None:
    people.apply_event(result("healthy", T0, T0 + 6 * HOUR, positive=False))
    assert people.settle(T0 + 30 * DAY) == []


def test_a_positive_test_turns_red_when_it_is_known_not_when_it_was_sampled(people) -> None:
    people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    assert people.settle(T0 + 6 * HOUR - 1) == []
    changes = people.settle(T0 + 6 * HOUR)
    assert _levels(changes, "case") == [(T0 + 6 * HOUR, "red")]
    assert changes[0].rule_set == "default@1.0.0"
    assert [reason.rule for reason in changes[0].reasons] == ["confirmed_case"]


def test_a_positive_test_returns_the_new_case_window(people) -> None:
    windows = people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    assert [window.person for window in windows] == ["case"]
    assert windows[0].infectious_from == T0 - 2 * DAY
    assert people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True)) == []


def test_a_corrected_positive_ends_the_case_when_the_correction_is_known(people) -> None:
    people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    assert _levels(people.settle(T0 + DAY), "case") == [(T0 + 6 * HOUR, "red")]
    windows = people.apply_event(result("case", T0, T0 + 30 * HOUR, positive=False))
    assert [window.retracted for window in windows] == [True]
    assert _levels(people.settle(T0 + 40 * DAY), "case") == [(T0 + 30 * HOUR, "green")]


def test_a_negative_test_clears_a_fever_clinic_visit_when_its_result_is_known(people) -> None:
    people.apply_event(visit("feverish", T0, "fever_clinic"))
    people.apply_event(result("feverish", T0 + HOUR, T0 + 5 * HOUR, positive=False))
    assert _levels(people.settle(T0 + 40 * DAY), "feverish") == [(T0, "yellow"), (T0 + 5 * HOUR, "green")]


def test_the_order_facts_arrive_in_does_not_change_the_timeline() -> None:
    events = [
        visit("feverish", T0, "fever_clinic"),
        result("feverish", T0 + HOUR, T0 + 5 * HOUR, positive=False),
        result("case", T0, T0 + 6 * HOUR, positive=True),
        result("case", T0, T0 + 30 * HOUR, positive=False),
        visit("diagnosed", T0 + 2 * DAY, "diagnosis"),
        visit("diagnosed", T0 + 9 * DAY, "recovery"),
    ]
    timelines = []
    for arrival in itertools.permutations(events):
        people = People(DEFAULT)
        for event in arrival:
            people.apply_event(event)
        timelines.append(sorted_changes(people.settle(T0 + 40 * DAY)))
    assert all(timeline == timelines[0] for timeline in timelines)
    assert [(c.person, c.at, c.level) for c in timelines[0]] == [
        ("feverish", T0, "yellow"),
        ("feverish", T0 + 5 * HOUR, "green"),
        ("case", T0 + 6 * HOUR, "red"),
        ("case", T0 + 30 * HOUR, "green"),
        ("diagnosed", T0 + 2 * DAY, "red"),
        ("diagnosed", T0 + 9 * DAY, "green"),
    ]


def test_a_decay_is_reported_exactly_at_its_second_and_not_before(people) -> None:
    people.apply_event(visit("feverish", T0, "fever_clinic"))
    assert _levels(people.settle(T0 + 14 * DAY - 1), "feverish") == [(T0, "yellow")]
    assert people.settle(T0 + 14 * DAY - 1) == []
    assert _levels(people.settle(T0 + 14 * DAY), "feverish") == [(T0 + 14 * DAY, "green")]


def test_settling_in_many_small_steps_reports_what_one_step_reports(people) -> None:
    whole = People(DEFAULT)
    for state in (people, whole):
        state.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
        state.apply_event(visit("feverish", T0 + HOUR, "fever_clinic"))
        state.apply_exposure(_contact("contact", T0 - DAY, 20, known_at=T0 + 6 * HOUR))
    stepped = []
    for moment in range(T0, T0 + 30 * DAY, 7 * HOUR):
        stepped += people.settle(moment)
    stepped += people.settle(T0 + 30 * DAY)
    assert sorted_changes(stepped) == sorted_changes(whole.settle(T0 + 30 * DAY))


def test_a_fact_given_before_an_earlier_one_is_still_reported_at_its_own_moment(people) -> None:
    people.apply_exposure(_contact("contact", T0 - DAY, 20, known_at=T0 + 6 * HOUR))  # known later, given first
    people.apply_event(visit("contact", T0 + HOUR, "fever_clinic"))
    assert _levels(people.settle(T0 + HOUR), "contact") == [(T0 + HOUR, "yellow")]
    assert _levels(people.settle(T0 + DAY), "contact") == [(T0 + 6 * HOUR, "red")]


def test_a_state_taken_over_is_due_when_a_fact_it_holds_becomes_known(people) -> None:
    people.apply_exposure(_contact("contact", T0 - DAY, 20, known_at=T0 + 6 * HOUR))
    people.apply_event(visit("contact", T0 + HOUR, "fever_clinic"))
    people.settle(T0 + HOUR)
    worker = People(DEFAULT)
    worker.restore(people.state("contact"))
    assert worker.settle(T0 + 2 * HOUR) == []
    assert _levels(worker.settle(T0 + DAY), "contact") == [(T0 + 6 * HOUR, "red")]


def test_settling_twice_to_the_same_time_reports_nothing_new(people) -> None:
    people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    people.apply_exposure(_contact("contact", T0 - DAY, 20, known_at=T0 + 6 * HOUR))
    first = people.settle(T0 + 20 * DAY)
    assert {change.person for change in first} == {"case", "contact"}
    assert people.settle(T0 + 20 * DAY) == []
    assert people.settle(T0 + 10 * DAY) == []


def test_an_exposure_counts_from_when_it_became_known(people) -> None:
    people.apply_exposure(_contact("contact", T0, 20, known_at=T0 + DAY))
    last_contact = T0 + 20 * MINUTE
    assert _levels(people.settle(T0 + 30 * DAY), "contact") == [
        (T0 + DAY, "red"),
        (last_contact + 14 * DAY, "green"),
    ]


def test_a_superseding_exposure_leaves_the_time_before_it_to_the_old_record(people) -> None:
    old = _contact("contact", T0, 20, known_at=T0 + HOUR)
    # The same pair met again twenty days later: the new record's clock starts then,
    # but until it is known, the old record alone decides the level.
    new = replace(old, last_at=T0 + 20 * DAY, minutes=40.0, known_at=T0 + 20 * DAY)
    people.apply_exposure(old)
    settled_by_supersession = people.apply_exposure(new)
    assert _levels(settled_by_supersession, "contact") == [
        (T0 + HOUR, "red"),
        (T0 + 20 * MINUTE + 14 * DAY, "green"),
    ]
    assert _levels(people.settle(T0 + 40 * DAY), "contact") == [
        (T0 + 20 * DAY, "red"),
        (T0 + 34 * DAY, "green"),
    ]


def test_records_superseded_ahead_of_the_settled_moment_still_change_the_level_on_time(people) -> None:
    # A contact growing tick by tick, its records arriving ahead of the regular settle:
    # the level must change when the record crossing the threshold takes effect.
    first = _contact("contact", T0, 5, known_at=T0 + 5 * MINUTE)
    crossing = replace(first, minutes=20.0, last_at=T0 + 20 * MINUTE, known_at=T0 + 20 * MINUTE)
    longer = replace(first, minutes=35.0, last_at=T0 + 35 * MINUTE, known_at=T0 + 35 * MINUTE)
    changes = people.apply_exposure(first)
    changes += people.apply_exposure(crossing)
    changes += people.settle(T0 + 10 * MINUTE)
    changes += people.apply_exposure(longer)
    changes += people.settle(T0 + 30 * DAY)
    assert _levels(changes, "contact") == [(T0 + 20 * MINUTE, "red"), (T0 + 35 * MINUTE + 14 * DAY, "green")]


def test_a_retraction_makes_the_level_fall_exactly_when_it_is_known(people) -> None:
    contact = _contact("contact", T0, 20, known_at=T0 + HOUR)
    people.apply_exposure(contact)
    retracted_at = T0 + 2 * DAY
    changes = people.apply_exposure(replace(contact, retracted=True, known_at=retracted_at))
    changes += people.settle(T0 + 30 * DAY)
    assert _levels(changes, "contact") == [(T0 + HOUR, "red"), (retracted_at, "green")]


SETTLED = T0 + 2 * DAY


@pytest.mark.parametrize(
    ("successor", "expected"),
    [
        ({"retracted": True}, [(T0 + HOUR, "red"), (SETTLED + 1, "green")]),
        ({"minutes": 40.0, "last_at": SETTLED}, [(T0 + HOUR, "red"), (SETTLED + 14 * DAY, "green")]),
    ],
    ids=["retraction", "growth"],
)
def test_a_late_fact_assesses_the_settled_moment_with_the_records_in_force_then(people, successor, expected) -> None:
    # Settled up to SETTLED, a record superseding the contact takes effect a second later. A fact
    # dated before SETTLED arriving after it makes that moment be assessed again: the contact record
    # must still count there (a retraction acts at its own moment; a grown contact never lapses).
    contact = _contact("contact", T0, 20, known_at=T0 + HOUR)
    people.apply_exposure(contact)
    changes = people.settle(SETTLED)
    changes += people.apply_exposure(replace(contact, known_at=SETTLED + 1, **successor))
    brief = replace(exposure("contact", "close_contact", "case-2", T0, T0 + MINUTE, 1.0), known_at=T0 + DAY)
    changes += people.apply_exposure(brief)
    changes += people.settle(T0 + 30 * DAY)
    assert _levels(changes, "contact") == expected


def test_a_retraction_of_an_exposure_never_settled_reports_nothing(people) -> None:
    contact = _contact("contact", T0, 20, known_at=T0 + HOUR)
    people.apply_exposure(replace(contact, retracted=True, known_at=T0 + 2 * DAY))
    people.apply_exposure(contact)
    assert people.settle(T0 + 30 * DAY) == []


def test_an_exposure_under_the_rule_threshold_reports_nothing(people) -> None:
    people.apply_exposure(_contact("brief", T0, 14, known_at=T0 + HOUR))
    assert people.settle(T0 + 30 * DAY) == []


def test_an_area_exposure_at_a_level_no_rule_counts_is_not_kept(people) -> None:
    # The default rules count high designations only: medium ones, which presence re-issues every
    # tick to everyone in the district, must cost nothing, while high ones still count.
    for step in range(1, 5):
        people.apply_exposure(exposure("resident", "area", "medium-1", T0, T0 + step * HOUR, step * 60.0,
                                       level="medium"))
    assert len(people) == 0
    people.apply_exposure(exposure("resident", "area", "high-1", T0, T0 + HOUR, 60.0, level="high"))
    assert _levels(people.settle(T0 + HOUR), "resident") == [(T0, "yellow")]


def test_rules_say_which_exposures_they_can_count() -> None:
    assert DEFAULT.counts_exposure("area", "high") and not DEFAULT.counts_exposure("area", "medium")
    assert DEFAULT.counts_exposure("companion", None)
    assert POINTS.counts_exposure("close_contact", None)


@pytest.fixture
def crowded_moment() -> list[PersonChange]:
    """Changes out of order, `b` changing twice at T0 (yellow, then red)."""
    return [
        PersonChange("c", T0 + 1, "red", (), "default@1.0.0"),
        PersonChange("b", T0, "yellow", (), "default@1.0.0"),
        PersonChange("a", T0 + 1, "yellow", (), "default@1.0.0"),
        PersonChange("b", T0, "red", (), "default@1.0.0"),
        PersonChange("a", T0, "red", (), "default@1.0.0"),
    ]


def test_sorted_changes_merges_a_persons_changes_at_one_moment_into_the_last(crowded_moment) -> None:
    merged = sorted_changes(crowded_moment)
    assert [(c.person, c.level) for c in merged if c.at == T0] == [("a", "red"), ("b", "red")]


def test_sorted_changes_orders_by_time_then_person(crowded_moment) -> None:
    assert [(c.at, c.person) for c in sorted_changes(crowded_moment)] == [
        (T0, "a"),
        (T0, "b"),
        (T0 + 1, "a"),
        (T0 + 1, "c"),
    ]


def test_a_timeline_line_carries_rfc3339_times_and_the_rule_set(people) -> None:
    people.apply_event(visit("feverish", T0, "fever_clinic"))
    line = people.settle(T0)[0].to_json()
    assert line == {
        "person": "feverish",
        "at": "2022-04-01T08:00:00Z",
        "level": "yellow",
        "reasons": [{"rule": "fever_clinic", "since": "2022-04-01T08:00:00Z", "until": "2022-04-15T08:00:00Z"}],
        "rule_set": "default@1.0.0",
    }


@pytest.fixture
def city_before_the_switch(people) -> People:
    """Under the default rules: a case (red), a 20-minute close contact (red), a 12-minute companion (yellow).

    Under points: the case stays red, 20 weighted minutes make the contact yellow and
    12 companion minutes (weight 0.1) leave the companion green.
    """
    people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    people.apply_exposure(_contact("contact", T0 - DAY, 20, known_at=T0 + 6 * HOUR))
    people.apply_exposure(_contact("companion", T0 - DAY, 12, known_at=T0 + 6 * HOUR, kind="companion"))
    return people


def test_rescore_reports_at_the_switch_only_persons_whose_level_differs(city_before_the_switch) -> None:
    switch = T0 + 3 * DAY
    changes = city_before_the_switch.rescore(POINTS, switch)
    at_switch = [c for c in changes if c.at == switch]
    assert sorted((c.person, c.level, c.rule_set) for c in at_switch) == [
        ("companion", "green", "points@1.0.0"),
        ("contact", "yellow", "points@1.0.0"),
    ]


def test_rescore_first_settles_what_happened_before_the_switch_under_the_old_rules(city_before_the_switch) -> None:
    switch = T0 + 3 * DAY
    before = [c for c in city_before_the_switch.rescore(POINTS, switch) if c.at < switch]
    assert sorted((c.person, c.at, c.level, c.rule_set) for c in before) == [
        ("case", T0 + 6 * HOUR, "red", "default@1.0.0"),
        ("companion", T0 + 6 * HOUR, "yellow", "default@1.0.0"),
        ("contact", T0 + 6 * HOUR, "red", "default@1.0.0"),
    ]


def test_after_rescore_later_changes_follow_the_new_rules(city_before_the_switch) -> None:
    switch = T0 + 3 * DAY
    city_before_the_switch.rescore(POINTS, switch)
    later = city_before_the_switch.settle(T0 + 40 * DAY)
    assert {c.rule_set for c in later} == {"points@1.0.0"}
    last_contact = T0 - DAY + 20 * MINUTE
    assert _levels(later, "contact") == [(last_contact + 14 * DAY, "green")]


def test_a_record_superseding_one_that_still_holds_changes_nothing_in_between() -> None:
    people = People(DEFAULT)
    old = replace(exposure("k", "close_contact", "case-1", T0, T0 + 20 * 60, 20.0), known_at=T0 + HOUR)
    grown = replace(old, last_at=T0 + 2 * DAY, minutes=40.0, known_at=T0 + 2 * DAY)
    changes = people.apply_exposure(old) + people.apply_exposure(grown) + people.settle(T0 + 30 * DAY)
    assert [(c.at - T0, c.level) for c in changes] == [(HOUR, "red"), (16 * DAY, "green")]


@pytest.fixture
def feverish_companion(people) -> People:
    """Yellow from a fever clinic visit at T0; a 12-minute companion of a case an hour later, known a day later."""
    people.apply_event(visit("feverish", T0, "fever_clinic"))
    people.apply_exposure(_contact("feverish", T0 + HOUR, 12, known_at=T0 + DAY, kind="companion"))
    return people


COMPANION_LAPSES = T0 + HOUR + 12 * MINUTE + 7 * DAY


def test_a_second_reason_at_the_same_level_and_its_lapse_are_lines_of_their_own(feverish_companion) -> None:
    assert _lines(feverish_companion.settle(T0 + 30 * DAY), "feverish") == [
        (T0, "yellow", ["fever_clinic"]),
        (T0 + DAY, "yellow", ["companion", "fever_clinic"]),
        (COMPANION_LAPSES, "yellow", ["fever_clinic"]),
        (T0 + 14 * DAY, "green", []),
    ]


def test_reason_lines_come_the_same_whether_settled_in_small_steps_or_at_once(feverish_companion) -> None:
    whole = People(DEFAULT)
    whole.apply_event(visit("feverish", T0, "fever_clinic"))
    whole.apply_exposure(_contact("feverish", T0 + HOUR, 12, known_at=T0 + DAY, kind="companion"))
    stepped = []
    for moment in range(T0, T0 + 30 * DAY, 7 * HOUR):
        stepped += feverish_companion.settle(moment)
    assert sorted_changes(stepped) == sorted_changes(whole.settle(T0 + 30 * DAY))


def test_a_reason_below_the_level_lapsing_is_a_line_though_the_level_stays(people) -> None:
    people.apply_exposure(_contact("contact", T0, 20, known_at=T0 + HOUR))
    people.apply_exposure(_contact("contact", T0, 12, known_at=T0 + HOUR, kind="companion"))
    assert _lines(people.settle(T0 + 30 * DAY), "contact") == [
        (T0 + HOUR, "red", ["close_contact", "companion"]),
        (T0 + 12 * MINUTE + 7 * DAY, "red", ["close_contact"]),
        (T0 + 20 * MINUTE + 14 * DAY, "green", []),
    ]


def test_a_superseding_record_does_not_skip_a_reason_that_starts_before_it_takes_effect(people) -> None:
    # Red from a close contact; a companion of another case starts on day 2 (the level stays red); the
    # contact's record is superseded on day 10. Settling up to day 10 by proving the level holds would
    # lose the companion's line.
    contact = _contact("contact", T0, 20, known_at=T0 + HOUR)
    people.apply_exposure(contact)
    changes = people.settle(T0 + HOUR)
    companion = replace(exposure("contact", "companion", "case-2", T0 + DAY, T0 + DAY + 12 * MINUTE, 12.0),
                        known_at=T0 + 2 * DAY)
    changes += people.apply_exposure(companion)
    changes += people.apply_exposure(replace(contact, last_at=T0 + 10 * DAY, minutes=40.0, known_at=T0 + 10 * DAY))
    changes += people.settle(T0 + 40 * DAY)
    assert _lines(changes, "contact") == [
        (T0 + HOUR, "red", ["close_contact"]),
        (T0 + 2 * DAY, "red", ["close_contact", "companion"]),
        (T0 + DAY + 12 * MINUTE + 7 * DAY, "red", ["close_contact"]),
        (T0 + 24 * DAY, "green", []),
    ]


def test_rescore_reports_a_person_whose_reasons_differ_under_the_new_rules_at_the_same_level(people) -> None:
    # A case who was also a companion of another case: red under both rule sets, but 20 companion
    # minutes (weight 0.1 under points) are no reason under points.
    people.apply_event(result("case", T0, T0 + 6 * HOUR, positive=True))
    people.apply_exposure(_contact("case", T0 - DAY, 20, known_at=T0 + 6 * HOUR, kind="companion"))
    switch = T0 + 3 * DAY
    changes = people.rescore(POINTS, switch)
    assert [(c.level, [r.rule for r in c.reasons]) for c in changes if c.at == switch and c.person == "case"] == [
        ("red", ["confirmed_case"])
    ]


def _resident_of_a_designated_district(people: People, ticks: int, settle_every_tick: bool) -> list[PersonChange]:
    """An area record every 15 minutes for `ticks` ticks (each superseding the last), a companion
    contact half way, settled up to each record as it comes (or not at all), then far ahead."""
    tick, changes = 15 * MINUTE, []
    for step in range(1, ticks + 1):
        now = T0 + step * tick
        area = exposure("resident", "area", "district-3", T0, now, step * 15.0, level="high")
        changes += people.apply_exposure(replace(area, known_at=now))
        if step == ticks // 2:
            changes += people.apply_exposure(_contact("resident", now - 30 * MINUTE, 20, now, kind="companion"))
        if settle_every_tick:
            changes += people.settle(now)
    return changes + people.settle(T0 + 30 * DAY)


def test_a_resident_proved_record_by_record_is_settled_without_assessing_each_tick(monkeypatch) -> None:
    import scoring.people as people_module

    assessed = []
    for name in ("continue_timeline", "timeline_to"):
        real = getattr(people_module, name)
        monkeypatch.setattr(people_module, name, lambda *args, real=real, **kw: assessed.append(1) or real(*args, **kw))
    ticks = 2 * 96
    step_by_step = _resident_of_a_designated_district(People(DEFAULT), ticks, settle_every_tick=True)
    assert len(assessed) < ticks // 8  # settles answered by the proof kept since the last record
    at_once = _resident_of_a_designated_district(People(DEFAULT), ticks, settle_every_tick=False)
    assert [(c.at, c.level, c.reasons) for c in step_by_step] == [(c.at, c.level, c.reasons) for c in at_once]
    last_record, companion_from = T0 + ticks * 15 * MINUTE, T0 + ticks // 2 * 15 * MINUTE
    assert [(c.at, c.level, [r.rule for r in c.reasons]) for c in step_by_step] == [
        (T0 + 15 * MINUTE, "yellow", ["high_risk_area"]),
        (companion_from, "yellow", ["companion", "high_risk_area"]),
        (companion_from - 10 * MINUTE + 7 * DAY, "yellow", ["high_risk_area"]),  # 7 days after the contact's end
        (last_record + 7 * DAY, "green", []),  # 7 days after the last record's presence
    ]

