"""Assessment: levels, reasons, exact decay times, case windows, and what evidence may hold."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.assess import assess, earliest_negatives, standing, timeline, trigger_end
from scoring.proof import prove_status, status_holds
from scoring.cases import case_windows, is_case, was_corrected
from scoring.rules import load_rule_set
from scoring.state import absorb_exposure, apply, apply_exposure, new_state
from scoring.synthetic import DAY, HOUR, exposure, ping, result, synthetic_states, visit
from scoring.timeutil import format_rfc3339

ROOT = Path(__file__).resolve().parents[3] / "rules"
DEFAULT = load_rule_set(ROOT / "default.yaml")
POINTS = load_rule_set(ROOT / "points.yaml")
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z


def state_of(*events, exposures=(), person="p", rules=DEFAULT):
    state = new_state(person)
    for event in events:
        state = apply(state, event, rules)
    for item in exposures:
        state = apply_exposure(state, item)
    return state


def test_a_person_with_no_facts_is_green_with_no_reason_and_nothing_to_review():
    assessment = assess(state_of(ping("p", T0)), DEFAULT, T0)
    assert (assessment.level, assessment.reasons, assessment.next_review_at) == ("green", (), None)


@pytest.mark.parametrize("rules", [DEFAULT, POINTS], ids=["default", "points"])
def test_a_standing_states_exactly_the_status_and_review_of_the_full_assessment(rules):
    # Settling compares standings moment after moment and assesses in full only where the status
    # changed: a standing that differed from the assessment anywhere would change timelines.
    states = synthetic_states(1500, T0, seed=13)
    statuses = set()
    for at in (T0 - 6 * DAY, T0 - HOUR, T0, T0 + 2 * DAY, T0 + 9 * DAY, T0 + 30 * DAY):
        for state in states:
            full = assess(state, rules, at)
            assert standing(state, rules, at) == full.standing
            statuses.add(full.status)
    assert {level for level, _ in statuses} == {"green", "yellow", "red"} and len(statuses) >= 4


@given(
    tests=st.lists(st.tuples(st.integers(0, 20 * DAY), st.integers(0, 3 * DAY), st.booleans(),
                             st.sampled_from(["pcr", "antigen"])), max_size=8),
    recoveries=st.lists(st.integers(0, 25 * DAY), max_size=2),
    clocks=st.tuples(st.integers(0, 20 * DAY), st.integers(0, 20 * DAY)),
    at=st.integers(0, 30 * DAY),
)
@settings(max_examples=300, deadline=None)
def test_a_trigger_with_a_later_clock_never_ends_earlier(tests, recoveries, clocks, at):
    # `standing` works out only the end of each rule's latest trigger, on this ground: every rule's
    # window and clearances (after a time, recovery, negative tests) count only what follows the clock.
    events = [result("p", T0 + sampled, T0 + sampled + delay, positive=positive, test=test)
              for sampled, delay, positive, test in tests]
    state = state_of(*events, *(visit("p", T0 + moment, "recovery") for moment in recoveries))
    early, late = sorted(clocks)
    for rule in DEFAULT.rules:
        assert trigger_end(rule, T0 + early, state, T0 + at) <= trigger_end(rule, T0 + late, state, T0 + at)


def test_only_facts_known_at_the_assessment_time_count():
    state = state_of(result("p", T0, T0 + 6 * HOUR, positive=True))
    assert assess(state, DEFAULT, T0 + 6 * HOUR - 1).level == "green"
    assert assess(state, DEFAULT, T0 + 6 * HOUR).level == "red"


def test_a_backward_contact_counts_from_when_it_became_known_not_from_the_contact():
    from dataclasses import replace

    contact = exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 60.0)
    confirmed = T0 + 3 * DAY
    state = state_of(exposures=[replace(contact, known_at=confirmed)])
    assert assess(state, DEFAULT, confirmed - 1).level == "green"
    red = assess(state, DEFAULT, confirmed)
    assert red.level == "red"
    assert red.reasons[0].since == confirmed
    assert [change.at for change in timeline(state, DEFAULT, T0, confirmed)] == [confirmed]


def test_a_reason_says_since_until_and_the_evidence():
    state = state_of(result("p", T0, T0 + 6 * HOUR, positive=True))
    [reason] = assess(state, DEFAULT, T0 + DAY).reasons
    assert (reason.rule, reason.level, reason.since, reason.until) == ("confirmed_case", "red", T0 + 6 * HOUR, T0 + 28 * DAY)
    assert reason.evidence == ({"signal": "positive_test", "test": "pcr", "sampled_at": T0, "known_at": T0 + 6 * HOUR},)


def test_evidence_holds_no_other_pseudonym_and_no_coordinates():
    contact = exposure("p", "close_contact", "0123456789abcdef", T0, T0 + HOUR, 60.0)
    state = state_of(ping("p", T0), result("p", T0, T0 + HOUR, positive=True), exposures=[contact])
    text = json.dumps(assess(state, DEFAULT, T0 + 2 * HOUR).to_dict())
    assert "lat" not in text and "lon" not in text and "104" not in text
    assert "\"p\"" not in text
    assert "0123456789abcdef" in text


def test_the_level_is_the_highest_and_every_active_rule_is_a_reason_highest_first():
    state = state_of(
        visit("p", T0, "fever_clinic"),
        exposures=[exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 60.0)],
    )
    assessment = assess(state, DEFAULT, T0 + 2 * HOUR)
    assert assessment.level == "red"
    assert assessment.rule_ids == ("close_contact", "fever_clinic")


def test_next_review_is_when_a_reason_lapses_a_lower_one_included():
    state = state_of(
        visit("p", T0, "fever_clinic"),
        exposures=[exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 60.0)],
    )
    assert assess(state, DEFAULT, T0 + 2 * HOUR).next_review_at == T0 + 14 * DAY
    assert assess(state, DEFAULT, T0 + 14 * DAY).rule_ids == ("close_contact",)


def test_next_review_is_not_when_one_of_two_triggers_of_a_rule_ends():
    state = state_of(exposures=[exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 60.0),
                                exposure("p", "close_contact", "case-b", T0, T0 + 2 * HOUR, 60.0)])
    assert assess(state, DEFAULT, T0 + 3 * HOUR).next_review_at == T0 + 2 * HOUR + 14 * DAY


def test_timeline_lists_every_level_change_exact_to_the_second():
    state = state_of(
        visit("p", T0, "fever_clinic"),
        result("p", T0, T0 + 12 * HOUR, positive=True),
        visit("p", T0 + 5 * DAY, "recovery"),
    )
    changes = timeline(state, DEFAULT, T0 - DAY, T0 + 30 * DAY)
    assert [(format_rfc3339(c.at), c.level) for c in changes] == [
        ("2022-04-01T08:00:00Z", "yellow"),
        ("2022-04-01T20:00:00Z", "red"),
        ("2022-04-06T08:00:00Z", "yellow"),
        ("2022-04-15T08:00:00Z", "green"),
    ]
    for change in changes:
        assert assess(state, DEFAULT, change.at).level == change.level
        assert assess(state, DEFAULT, change.at - 1).level != change.level


def test_timeline_reports_a_change_at_its_start_against_the_level_before():
    state = state_of(visit("p", T0, "fever_clinic"))
    assert timeline(state, DEFAULT, T0, T0 + DAY) == []
    [change] = timeline(state, DEFAULT, T0, T0 + DAY, before=("green", ()))
    assert (change.at, change.level) == (T0, "yellow")


def test_two_negatives_must_be_spaced_by_their_sample_times():
    assert earliest_negatives([(0, 10), (100, 20)], count=2, apart=100) == 20
    assert earliest_negatives([(0, 10), (99, 20)], count=2, apart=100) is None
    assert earliest_negatives([(200, 5), (0, 30), (100, 40)], count=2, apart=100) == 30


def test_a_case_window_opens_two_days_before_the_sample_and_closes_at_isolation_after_confirmation():
    state = state_of(result("p", T0, T0 + 6 * HOUR, positive=True))
    [window] = case_windows(state, DEFAULT, T0 + DAY)
    assert (window.infectious_from, window.infectious_until, window.retracted) == (T0 - 2 * DAY, T0 + 8 * HOUR, False)
    assert window.person == "p" and len(window.case_ref) == 16
    assert is_case(state, DEFAULT, T0 + DAY) and not is_case(state, DEFAULT, T0)


def test_a_corrected_positive_gives_a_retracted_case_window():
    positive = result("p", T0, T0 + 6 * HOUR, positive=True)
    correction = result("p", T0, T0 + DAY, positive=False)
    state = state_of(positive, correction)
    [live] = case_windows(state, DEFAULT, T0 + DAY - 1)
    [withdrawn] = case_windows(state, DEFAULT, T0 + DAY)
    assert withdrawn.retracted and withdrawn.case_ref == live.case_ref
    assert was_corrected(state, DEFAULT, T0 + DAY) and not is_case(state, DEFAULT, T0 + DAY)


def test_the_earliest_of_several_case_signals_anchors_the_window():
    state = state_of(visit("p", T0 + DAY, "diagnosis"), result("p", T0, T0 + 2 * DAY, positive=True, test="antigen"))
    [window] = case_windows(state, DEFAULT, T0 + 3 * DAY)
    assert window.infectious_from == T0 - 2 * DAY
    assert window.infectious_until == T0 + DAY + 2 * HOUR


def test_points_score_weights_minutes_by_kind_and_infectiousness():
    near = exposure("p", "close_contact", "case-a", T0, T0 + 20 * 60, 20.0, minutes_by_day=((2, 20.0),))
    far = exposure("p", "companion", "case-a", T0, T0 + 3 * HOUR, 180.0, minutes_by_day=((2, 180.0),))
    state = state_of(exposures=[near, far], rules=POINTS)
    [reason] = assess(state, POINTS, T0 + HOUR).reasons
    assert reason.level == "yellow"
    assert reason.evidence[0]["score"] == 38.0


def test_the_same_engine_runs_both_shipped_rule_sets_on_one_state():
    contact = exposure("p", "close_contact", "case-a", T0, T0 + 20 * 60, 20.0, minutes_by_day=((2, 20.0),))
    state = state_of(exposures=[contact])
    assert assess(state, DEFAULT, T0 + HOUR).level == "red"
    assert assess(state, POINTS, T0 + HOUR).level == "yellow"


RED_CONTACT = ("red", ("close_contact",))


def test_a_close_contact_holds_red_and_its_reason_over_a_span_while_later_records_arrive():
    state = apply_exposure(new_state("p"), exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0))
    state = apply_exposure(state, exposure("p", "companion", "case-b", T0 + HOUR, T0 + 2 * HOUR, 5.0))
    assert status_holds(state, DEFAULT, RED_CONTACT, T0 + 1800, T0 + 3 * HOUR)
    assert not status_holds(state, DEFAULT, ("yellow", ("close_contact",)), T0 + 1800, T0 + 3 * HOUR)
    assert not status_holds(state, DEFAULT, ("red", ("close_contact", "companion")), T0 + 1800, T0 + 3 * HOUR)


def test_red_is_not_proven_over_a_span_in_which_a_lower_reason_starts_or_lapses():
    contact = exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0)
    companion = exposure("p", "companion", "case-b", T0 + HOUR, T0 + 2 * HOUR, 11.0)
    state = apply_exposure(apply_exposure(new_state("p"), contact), companion)
    assert not status_holds(state, DEFAULT, RED_CONTACT, T0 + 1800, T0 + 3 * HOUR)
    both = ("red", ("close_contact", "companion"))
    assert status_holds(state, DEFAULT, both, T0 + 2 * HOUR, T0 + 3 * HOUR)
    assert not status_holds(state, DEFAULT, both, T0 + 2 * HOUR, T0 + 2 * HOUR + 8 * DAY)


def test_a_level_is_not_proven_over_a_span_in_which_a_test_becomes_known():
    state = apply_exposure(new_state("p"), exposure("p", "close_contact", "case-a", T0, T0 + 1800, 30.0))
    state = apply(state, result("p", T0 + HOUR, T0 + 2 * HOUR, positive=False), DEFAULT)
    assert not status_holds(state, DEFAULT, RED_CONTACT, T0 + 1800, T0 + 3 * HOUR)


def test_green_holds_only_while_no_record_in_the_span_reaches_a_threshold():
    short = exposure("p", "companion", "case-a", T0, T0 + 600, 10.0)
    state = apply_exposure(new_state("p"), short)
    assert status_holds(state, DEFAULT, ("green", ()), T0, T0 + 3 * HOUR)
    later = exposure("p", "companion", "case-b", T0 + 2 * HOUR, T0 + 3 * HOUR, 11.0)
    grown = apply_exposure(state, later)
    assert not status_holds(grown, DEFAULT, ("green", ()), T0, T0 + 3 * HOUR)
    assert status_holds(grown, DEFAULT, ("green", ()), T0, T0 + 2 * HOUR - 1)


class _NotToBeScanned(dict):
    """Exposures that may be looked up by id but not gone through."""

    def values(self):
        raise AssertionError("the exposures were scanned")


def _ongoing_contacts(state, end, contacts=40):
    # A person who is red from a close contact and meets many cases briefly (none counts).
    for n in range(contacts):
        state = apply_exposure(state, exposure("p", "companion", f"case-{n}", T0, T0 + 300, 5.0))
    return state


def _proved_then_grown(*events):
    """A red close contact proved over its second hour, then its next record taken (exposures not to be scanned)."""
    contact = exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 30.0)
    state = _ongoing_contacts(apply_exposure(new_state("p"), contact), T0 + HOUR)
    for event in events:
        state = apply(state, event, DEFAULT)
    proof = prove_status(state, DEFAULT, RED_CONTACT, T0 + HOUR, T0 + 2 * HOUR)
    assert proof is not None
    # The contact goes on: its next record, known from the next span's start, holds red up.
    grown = replace(contact, last_at=T0 + 2 * HOUR, minutes=90.0, known_at=T0 + 2 * HOUR + 1)
    assert absorb_exposure(state, grown)
    proof.took(DEFAULT, state, grown)
    state.exposures = _NotToBeScanned(state.exposures)
    return state, proof


def test_the_span_after_a_proof_is_proved_without_going_through_the_exposures_again():
    state, proof = _proved_then_grown()
    status = RED_CONTACT
    assert prove_status(state, DEFAULT, status, T0 + 2 * HOUR, T0 + 3 * HOUR, last=proof) is not None
    with pytest.raises(AssertionError, match="scanned"):  # a span not following the proof is proved afresh
        prove_status(state, DEFAULT, status, T0 + 2 * HOUR + 1, T0 + 3 * HOUR, last=proof)


def test_a_proof_answers_only_the_span_right_after_it_with_its_status_and_before_its_horizon():
    state, proof = _proved_then_grown()
    assert proof.answers(state, RED_CONTACT, T0 + 2 * HOUR, T0 + 3 * HOUR)
    assert not proof.answers(state, RED_CONTACT, T0 + 2 * HOUR + 1, T0 + 3 * HOUR)  # not right after it
    assert not proof.answers(state, RED_CONTACT, T0 + 2 * HOUR, T0 + 2 * HOUR)  # no span at all
    assert not proof.answers(state, ("red", ("close_contact", "companion")), T0 + 2 * HOUR, T0 + 3 * HOUR)
    assert not proof.answers(state, RED_CONTACT, T0 + 2 * HOUR, proof.horizon)
    # The record holding red up replaced behind the proof's back (not told with `took`): not answered.
    state.exposures = dict(state.exposures)
    held = state.exposures[next(iter(proof.lasting.values()))[0].exposure_id]
    state.exposures[held.exposure_id] = replace(held, minutes=held.minutes + 1)
    assert not proof.answers(state, RED_CONTACT, T0 + 2 * HOUR, T0 + 3 * HOUR)


def test_a_carried_proof_does_not_hide_a_record_that_reaches_a_threshold():
    state = _ongoing_contacts(new_state("p"), T0 + HOUR)
    proof = prove_status(state, DEFAULT, ("green", ()), T0 + HOUR, T0 + 2 * HOUR)
    assert proof is not None
    longer = replace(exposure("p", "companion", "case-3", T0, T0 + 3 * HOUR, 11.0), known_at=T0 + 3 * HOUR)
    assert absorb_exposure(state, longer)
    proof.took(DEFAULT, state, longer)
    state.exposures = _NotToBeScanned(state.exposures)
    assert prove_status(state, DEFAULT, ("green", ()), T0 + 2 * HOUR, T0 + 3 * HOUR - 1, last=proof) is not None
    state.exposures = dict(state.exposures)
    assert prove_status(state, DEFAULT, ("green", ()), T0 + 2 * HOUR, T0 + 3 * HOUR, last=proof) is None
    assert not status_holds(state, DEFAULT, ("green", ()), T0 + 2 * HOUR, T0 + 3 * HOUR)


def test_a_points_score_holds_its_level_until_a_record_could_lift_it():
    state = apply_exposure(new_state("p"), exposure("p", "close_contact", "case-a", T0, T0 + HOUR, 20.0, minutes_by_day=((2, 20.0),)))
    scored = ("yellow", ("exposure_score",))
    assert status_holds(state, POINTS, scored, T0 + HOUR, T0 + 2 * HOUR)
    grown = apply_exposure(state, exposure("p", "close_contact", "case-b", T0 + 90 * 60, T0 + 2 * HOUR, 50.0, minutes_by_day=((2, 50.0),)))
    assert not status_holds(grown, POINTS, scored, T0 + HOUR, T0 + 2 * HOUR)


def test_a_carried_proof_answers_without_a_scan_only_until_a_test_becomes_known():
    state, proof = _proved_then_grown(result("p", T0 + 2 * HOUR, T0 + 2 * HOUR + 30 * 60, positive=False))
    status = RED_CONTACT
    assert prove_status(state, DEFAULT, status, T0 + 2 * HOUR, T0 + 2 * HOUR + 29 * 60, last=proof) is not None
    # The negative result becomes known inside the next span: no proof covers it, carried or not.
    state.exposures = dict(state.exposures)
    assert prove_status(state, DEFAULT, status, T0 + 2 * HOUR, T0 + 3 * HOUR, last=proof) is None
