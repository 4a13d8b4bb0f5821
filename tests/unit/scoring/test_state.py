"""Person state: idempotent, order independent, bounded, and serialisable."""

from pathlib import Path

import pytest

from scoring.records import encode_facts
from scoring.rules import load_rule_set
from scoring.state import absorb_exposure, apply, apply_exposure, new_state
from scoring.synthetic import DAY, exposure, ping, result, visit

RULES = load_rule_set(Path(__file__).resolve().parents[3] / "rules" / "default.yaml")
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z


def test_applying_the_same_event_twice_changes_nothing():
    event = result("p", T0, T0 + 3600, positive=True)
    once = apply(new_state("p"), event, RULES)
    assert apply(once, event, RULES) == once
    assert once.applied_event_ids == {event.event_id}


def test_events_in_any_order_give_the_same_state():
    events = [
        result("p", T0, T0 + 3600, positive=True),
        visit("p", T0 + 5 * DAY, "recovery"),
        ping("p", T0 + 6 * DAY),
    ]
    forward = new_state("p")
    for event in events:
        forward = apply(forward, event, RULES)
    backward = new_state("p")
    for event in reversed(events):
        backward = apply(backward, event, RULES)
    assert forward == backward


def test_a_ping_only_records_when_the_person_was_last_seen():
    state = apply(new_state("p"), ping("p", T0), RULES)
    state = apply(state, ping("p", T0 - 60), RULES)
    assert state.last_seen == T0
    assert not state.has_facts()


def test_apply_does_not_change_the_state_it_was_given():
    before = new_state("p")
    apply(before, result("p", T0, T0 + 3600, positive=True), RULES)
    assert before == new_state("p")


def test_an_event_of_another_person_is_refused():
    with pytest.raises(ValueError, match="another person"):
        apply(new_state("p"), result("q", T0, T0 + 3600, positive=True), RULES)


def test_a_later_exposure_record_supersedes_an_earlier_one_in_either_order():
    early = exposure("p", "close_contact", "case-a", T0, T0 + 600, 10.0)
    later = exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0)
    one = apply_exposure(apply_exposure(new_state("p"), early), later)
    other = apply_exposure(apply_exposure(new_state("p"), later), early)
    assert one == other
    assert one.exposures[later.exposure_id].minutes == 30.0


def test_absorbing_an_exposure_in_place_keeps_what_apply_exposure_keeps():
    early = exposure("p", "close_contact", "case-a", T0, T0 + 600, 10.0)
    later = exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0)
    state = apply_exposure(new_state("p"), early)
    packed = state.fact_records()
    assert absorb_exposure(state, later)
    assert not absorb_exposure(state, early)
    assert state == apply_exposure(apply_exposure(new_state("p"), later), early)
    assert state.fact_records() != packed
    assert state.fact_records() == encode_facts((), (), state.exposures.values())


def test_a_retraction_is_final_even_when_an_older_record_arrives_after_it():
    live = exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0)
    retracted = exposure("p", "close_contact", "case-a", T0, T0 + 600, 10.0, retracted=True)
    state = apply_exposure(apply_exposure(new_state("p"), retracted), live)
    assert state.exposures[live.exposure_id].retracted


def test_facts_older_than_the_retention_are_forgotten_and_not_readmitted():
    old = result("p", T0, T0 + 3600, positive=True)
    state = apply(new_state("p"), old, RULES)
    state = apply(state, ping("p", T0 + RULES.retention_s + DAY), RULES)
    assert not state.tests
    assert apply(state, old, RULES).tests == {}
    stale = exposure("p", "close_contact", "case-a", T0, T0 + 600, 20.0)
    assert apply_exposure(state, stale) is state


def test_facts_within_the_retention_are_kept():
    state = apply(new_state("p"), result("p", T0, T0 + 3600, positive=True), RULES)
    state = apply(state, ping("p", T0 + RULES.retention_s - DAY), RULES)
    assert len(state.tests) == 1


def test_fact_records_follow_every_change_of_the_facts():
    state = apply(new_state("p"), result("p", T0, T0 + 3600, positive=True), RULES)
    state = apply_exposure(state, exposure("p", "companion", "case-b", T0, T0 + 900, 15.0, minutes_by_day=((2, 15.0),)))
    state = apply(state, ping("p", T0 + 7200), RULES)
    assert state.fact_records() == encode_facts(state.tests.values(), state.visits.values(), state.exposures.values())
    pruned = apply(state, ping("p", T0 + RULES.retention_s + DAY), RULES)
    assert pruned.fact_records() == b""
