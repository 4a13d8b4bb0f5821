"""Properties of the scoring core over random histories of one person (hypothesis)."""

from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.assess import assess, ends_after, timeline, trigger_end
from scoring.proof import prove_status, status_holds
from scoring.batch import rescore
from scoring.rules import LEVEL_CODE, LEVELS, load_rule_set
from scoring.state import absorb_exposure, apply, apply_exposure, new_state, supersedes
from scoring.synthetic import DAY, HOUR, exposure, ping, result, visit

ROOT = Path(__file__).resolve().parents[2] / "rules"
RULE_SETS = [load_rule_set(ROOT / "default.yaml"), load_rule_set(ROOT / "points.yaml")]
T0 = 1_648_800_000
SPAN_HOURS = 20 * 24  # well inside the retention, so nothing is forgotten mid-history
PERSON = "p"

hours = st.integers(min_value=0, max_value=SPAN_HOURS)
sample_hours = st.sampled_from([0, 5, 24, 30, 48, 49, 72, 100, 170, 200, 300, 336])

test_events = st.builds(
    lambda sampled, delay, positive, test, salt: result(
        PERSON, T0 + sampled * HOUR, T0 + sampled * HOUR + delay * 600, positive=positive, test=test, event_id=f"t{salt}"
    ),
    sample_hours,
    st.integers(0, 400),
    st.booleans(),
    st.sampled_from(["pcr", "antigen"]),
    st.integers(0, 10**6),
)
visit_events = st.builds(
    lambda at, kind, salt: visit(PERSON, T0 + at * HOUR, kind, event_id=f"v{salt}"),
    hours,
    st.sampled_from(["fever_clinic", "diagnosis", "recovery"]),
    st.integers(0, 10**6),
)
ping_events = st.builds(lambda at: ping(PERSON, T0 + at * HOUR), hours)
events = st.lists(st.one_of(test_events, visit_events, ping_events), max_size=8, unique_by=lambda e: e.event_id)


def _exposure(kind, source, first, length, minutes, day, level, retracted):
    by_day = ((day, float(minutes)),) if day is not None else ()
    return exposure(
        PERSON, kind, source, T0 + first * HOUR, T0 + first * HOUR + length * 60, float(minutes),
        minutes_by_day=by_day, level=level if kind == "area" else None, retracted=retracted,
    )


exposures = st.lists(
    st.builds(
        _exposure,
        st.sampled_from(["close_contact", "companion", "area"]),
        st.sampled_from(["s1", "s2", "s3"]),
        hours,
        st.integers(0, 600),
        st.sampled_from([0, 9, 10, 10.5, 11, 14, 15, 16, 40, 61, 200]),
        st.one_of(st.none(), st.integers(0, 10)),
        st.sampled_from(["medium", "high"]),
        st.booleans(),
    ),
    max_size=5,
)
moments = st.integers(min_value=-24, max_value=SPAN_HOURS + 40 * 24).map(lambda h: T0 + h * HOUR)
rule_sets = st.sampled_from(RULE_SETS)
fast = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(event_list, exposure_list, rules):
    state = new_state(PERSON)
    for event in event_list:
        state = apply(state, event, rules)
    for item in exposure_list:
        state = apply_exposure(state, item)
    return state


@fast
@given(events, exposures, rule_sets, moments)
def test_applying_everything_twice_changes_nothing(event_list, exposure_list, rules, at):
    once = build(event_list, exposure_list, rules)
    twice = build(event_list + event_list, exposure_list + exposure_list, rules)
    assert twice == once
    assert assess(twice, rules, at) == assess(once, rules, at)


@fast
@given(st.data(), events, exposures, rule_sets, moments)
def test_any_arrival_order_gives_the_same_state_and_assessment(data, event_list, exposure_list, rules, at):
    shuffled_events = data.draw(st.permutations(event_list))
    shuffled_exposures = data.draw(st.permutations(exposure_list))
    one = build(event_list, exposure_list, rules)
    other = build(shuffled_events, shuffled_exposures, rules)
    assert one == other
    assert assess(one, rules, at) == assess(other, rules, at)


@fast
@given(events, exposures, rule_sets, moments, st.integers(0, 400), st.integers(15, 300), st.booleans())
def test_a_positive_test_or_close_contact_never_lowers_the_level(event_list, exposure_list, rules, at, back, minutes, positive_test):
    state = build(event_list, exposure_list, rules)
    before = LEVEL_CODE[assess(state, rules, at).level]
    if positive_test:
        added = apply(state, result(PERSON, at - back * 600 - HOUR, at - back * 600, positive=True, event_id="added"), rules)
    else:
        contact = exposure(PERSON, "close_contact", "fresh-case", at - back * 600, at, float(minutes), minutes_by_day=((2, float(minutes)),))
        added = apply_exposure(state, contact)
    assert LEVEL_CODE[assess(added, rules, at).level] >= before


@fast
@given(events, exposures, rule_sets, moments)
def test_every_level_but_green_has_a_reason_and_the_reasons_explain_the_level(event_list, exposure_list, rules, at):
    assessment = assess(build(event_list, exposure_list, rules), rules, at)
    if assessment.level == "green":
        assert assessment.reasons == ()
    else:
        assert max(LEVEL_CODE[reason.level] for reason in assessment.reasons) == LEVEL_CODE[assessment.level]
        assert all(reason.since <= at and (reason.until is None or reason.until > at) for reason in assessment.reasons)


@fast
@given(st.lists(st.tuples(events, exposures), min_size=1, max_size=6), rule_sets, moments)
def test_batch_levels_equal_per_person_levels(histories, rules, at):
    states = [build(event_list, exposure_list, rules) for event_list, exposure_list in histories]
    assert rescore(states, rules, at).tolist() == [LEVEL_CODE[assess(state, rules, at).level] for state in states]


@fast
@given(events, exposures, rule_sets, st.lists(moments, min_size=1, max_size=6))
def test_the_timeline_gives_the_level_at_every_moment(event_list, exposure_list, rules, probes):
    state = build(event_list, exposure_list, rules)
    start, end = T0 - DAY, T0 + SPAN_HOURS * HOUR + 45 * DAY
    changes = timeline(state, rules, start, end)
    initial = assess(state, rules, start)
    for probe in probes:
        status = initial.status
        for change in changes:
            if change.at <= probe:
                status = (change.level, tuple(reason.rule for reason in change.reasons))
        assert assess(state, rules, probe).status == status
    statuses = [(c.level, tuple(r.rule for r in c.reasons)) for c in changes]
    assert all(a != b for a, b in zip(statuses, statuses[1:]))
    assert all(change.level in LEVELS for change in changes)


@fast
@given(events, exposures, rule_sets, moments)
def test_next_review_is_exactly_when_a_reason_lapses_or_gives_less_with_no_new_event(event_list, exposure_list, rules, at):
    state = build([e for e in event_list if e.ts.timestamp() <= at], [x for x in exposure_list if x.first_at <= at], rules)
    now = assess(state, rules, at)
    if now.next_review_at is None:
        assert now.level == "green"
        return
    before = assess(state, rules, now.next_review_at - 1)
    assert before.status == now.status
    then = assess(state, rules, now.next_review_at)
    given = {reason.rule: reason.level for reason in then.reasons}
    assert then.status != now.status or any(given[r.rule] != r.level for r in before.reasons)


@fast
@given(events, exposures, rule_sets, moments, st.integers(min_value=0, max_value=72))
def test_a_status_proven_to_hold_over_a_span_holds_at_every_moment_of_it(event_list, exposure_list, rules, start, hours_long):
    state = build(event_list, exposure_list, rules)
    end = start + hours_long * HOUR
    status = assess(state, rules, start + 1).status
    if status_holds(state, rules, status, start, end):
        assert timeline(state, rules, start + 1, end, before=status) == []


records = st.lists(
    st.tuples(st.integers(1, 48), st.integers(0, 9), st.sampled_from([0, 5, 10, 15, 120]), st.sampled_from([-2 * HOUR, 1, HOUR]),
              st.booleans()),
    min_size=1,
    max_size=8,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # chains are long: more draws
@given(events, exposures, rule_sets, moments, records)
def test_a_proof_carried_from_span_to_span_answers_as_a_fresh_one(event_list, exposure_list, rules, start, steps):
    # As People drives it: each span ends where a record takes effect (or one known earlier, or later, is
    # taken), the proof is told of it, and the next span starts where the last ended.
    state = build(event_list, exposure_list, rules)
    status = assess(state, rules, start + 1).status
    proof = None
    for hours_long, which, more, after, retract in steps:
        end = start + hours_long * HOUR
        held = sorted(state.exposures.values(), key=lambda e: e.exposure_id)
        likely = held[which % len(held)].exposure_id if held else None
        carried = prove_status(state, rules, status, start, end, likely, proof)
        assert (carried is not None) == status_holds(state, rules, status, start, end, likely)
        if carried is None:
            return
        proof = carried
        known = end + after
        if held:
            old = held[which % len(held)]
            record = replace(old, last_at=max(old.last_at, known), minutes=old.minutes + more, known_at=known,
                             retracted=retract and which == 0)
        else:
            record = replace(exposure(PERSON, "companion", "s9", known - 600, known, float(more)), known_at=known)
        if supersedes(state, record):
            absorb_exposure(state, record)
            proof.took(rules, state, record)
        start = end


@fast
@given(events, rule_sets, moments, moments, moments)
def test_a_trigger_is_said_to_end_after_a_moment_exactly_when_its_end_is_later(event_list, rules, clock, at, moment):
    # Clearances by tests and visits (negative tests, recovery) and by time alike.
    state = build(event_list, [], rules)
    for rule in rules.rules:
        assert ends_after(rule, clock, state, at, moment) == (trigger_end(rule, clock, state, at) > moment)
