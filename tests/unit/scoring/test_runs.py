"""Growth of an exposure the rules read only by its moments waits: levels and reasons stay exact."""

from __future__ import annotations

import contextlib
import itertools
import random
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.city import CityScorer, HoldsNoGrowth, LocalPresence
from scoring.events import AreaRisk
from scoring.exposure import Exposure
from scoring.people import People, sorted_changes
from scoring.rules import RuleSet, load_rule_set
from scoring.runs import REFRESH_S, GrowthRuns, held_kinds
from scoring.synthetic import DAY, HOUR, exposure, result
from scoring.timeutil import from_epoch
from tests.unit.scoring.records import contact, lines
from tests.unit.scoring.scripted import Script, Scripted

RULES = Path(__file__).resolve().parents[3] / "rules"
DEFAULT = load_rule_set(RULES / "default.yaml")
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z
TICK = 15 * 60


def _area(person: str, last_at: int, minutes: float, first_at: int = T0) -> Exposure:
    return exposure(person, "area", "district-3", first_at, last_at, minutes, level="high")


def _with(document_change) -> RuleSet:
    document = yaml.safe_load((RULES / "default.yaml").read_text())
    document_change(document)
    return RuleSet.from_mapping(document, "changed.yaml")


def _area_rule(document: dict) -> dict:
    return next(rule for rule in document["rules"] if rule["signal"] == "area")


def test_under_the_default_rules_only_area_growth_waits() -> None:
    # Companions and close contacts have minutes thresholds and clearances: every record counts.
    assert held_kinds(DEFAULT) == {"area"}
    assert held_kinds(load_rule_set(RULES / "points.yaml")) == set()  # it has no area rule; points weigh minutes


def test_an_area_rule_that_reads_minutes_or_clears_or_lasts_under_a_day_keeps_every_record() -> None:
    assert "area" not in held_kinds(_with(lambda d: _area_rule(d).update(minutes={"at_least": 60})))
    assert "area" not in held_kinds(_with(lambda d: _area_rule(d).update(clears=[{"negative_tests": {"count": 1}}])))
    assert "area" not in held_kinds(_with(lambda d: _area_rule(d).update(window="12h")))


def _tick(n: int) -> int:
    """The end of the n-th tick from T0."""
    return T0 + n * TICK


def test_a_run_is_delivered_when_it_starts_then_what_waits_every_refresh() -> None:
    runs = GrowthRuns(frozenset({"area"}))
    first = _area("k", _tick(1) - 300, 10)
    assert runs.tick([first], _tick(1)) == [first]
    refresh = next(n for n in itertools.count(2) if _tick(n) - first.last_at >= REFRESH_S)
    grown = {n: _area("k", _tick(n) - 300, 10 + 15 * (n - 1)) for n in range(2, refresh + 2)}
    for n in range(2, refresh):
        assert runs.tick([grown[n]], _tick(n)) == []  # waits: it only extends the one delivered
    assert runs.tick([grown[refresh]], _tick(refresh)) == [grown[refresh]]  # REFRESH_S past the last contact delivered
    assert runs.tick([grown[refresh + 1]], _tick(refresh + 1)) == []
    # It stopped growing: what waits is delivered when its refresh falls due, not at the first quiet tick.
    due = grown[refresh].last_at + REFRESH_S
    quiet = [n for n in range(refresh + 2, refresh + 40) if _tick(n) < due]
    assert quiet and all(runs.tick([], _tick(n)) == [] for n in quiet)
    assert runs.tick([], _tick(quiet[-1] + 1)) == [grown[refresh + 1]]  # the newest, as every tick leaves it
    assert len(runs) == 1  # it may still grow within REFRESH_S of what it delivered
    assert runs.tick([], _tick(quiet[-1] + 1) + REFRESH_S) == [] and len(runs) == 0


def test_a_run_that_pauses_and_grows_again_goes_on_waiting() -> None:
    # A resident leaves the district for a few ticks and comes back: the tally grows on from where it was.
    runs = GrowthRuns(frozenset({"area"}))
    first = _area("k", _tick(1) - 60, 14)
    assert runs.tick([first], _tick(1)) == [first]
    assert runs.tick([_area("k", _tick(2) - 60, 29)], _tick(2)) == []
    assert all(runs.tick([], _tick(n)) == [] for n in range(3, 8))  # away
    back = _area("k", _tick(8) - 60, 44)
    assert runs.tick([back], _tick(8)) == []  # only extends what waited: it replaces it
    assert runs.release() == [back] and len(runs) == 0


def test_a_record_that_does_not_only_grow_is_delivered_at_once() -> None:
    runs = GrowthRuns(frozenset({"area"}))
    runs.tick([_area("k", T0 + 30 * 60, 30)], _tick(2))
    shorter = _area("k", T0 + 20 * 60, 20)  # a late ping shortened the stay
    assert runs.tick([shorter], _tick(3)) == [shorter]
    moved = _area("k", T0 + 40 * 60, 30, first_at=T0 + 5 * 60)
    assert runs.tick([moved], _tick(4)) == [moved]
    withdrawn = exposure("k", "area", "district-3", T0, T0 + 40 * 60, 30, level="high", retracted=True)
    assert runs.tick([withdrawn], _tick(5)) == [withdrawn]
    assert len(runs) == 0


def test_a_record_after_one_waiting_that_does_not_extend_it_comes_after_it() -> None:
    runs = GrowthRuns(frozenset({"area"}))
    runs.tick([_area("k", T0 + 20 * 60, 20)], _tick(2))
    waiting = _area("k", T0 + 35 * 60, 35)
    assert runs.tick([waiting], _tick(3)) == []
    shorter = _area("k", T0 + 34 * 60, 34)  # every tick, it would have come after `waiting` (which outranks it)
    assert runs.tick([shorter], _tick(4)) == [waiting, shorter]


def test_other_kinds_pass_and_records_between_ticks_end_the_run_after_what_waits() -> None:
    runs = GrowthRuns(frozenset({"area"}))
    contact = exposure("k", "companion", "case-1", T0, T0 + 20 * 60, 20)
    assert runs.tick([contact, _area("k", T0 + 20 * 60, 20)], _tick(2)) == [contact, _area("k", T0 + 20 * 60, 20)]
    waiting = _area("k", T0 + 35 * 60, 35)
    assert runs.tick([waiting], _tick(3)) == []
    redesignated = _area("k", T0 + 40 * 60, 40)
    assert runs.passing([redesignated]) == [waiting, redesignated]
    assert len(runs) == 0 and runs.tick([], _tick(4)) == []
    runs.tick([_area("k", T0 + 50 * 60, 50), _area("j", T0 + 50 * 60, 50)], _tick(4))
    assert runs.tick([_area("k", T0 + 65 * 60, 65), _area("j", T0 + 65 * 60, 65)], _tick(5)) == []
    assert sorted(e.person for e in runs.release()) == ["j", "k"]
    assert len(runs) == 0


# -- the time loop: what waits changes no level, no moment and no set of reasons -------------------

_PERSONS = ("a", "b", "c")


@st.composite
def _scripts(draw) -> Script:
    """Two days of ticks: each person in a designated district on and off (a record each tick they grow
    there, in some scripts now and then one shortened), with companion and close contacts now and then."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    stay = draw(st.sampled_from([0.3, 0.8, 0.995]))  # how likely one in the district is still there a tick later
    shorten = draw(st.sampled_from([0.0, 0.05]))  # how likely a late ping shortens a record (and ends its run)
    ticks = 192
    script: Script = {T0 + n * TICK: ([], []) for n in range(1, ticks + 1)}
    for person in _PERSONS:
        first, last, minutes, here = None, 0, 0.0, False
        for n in range(1, ticks + 1):
            end = T0 + n * TICK
            here = rng.random() < (stay if here else 0.2)
            if here:
                offset = rng.randrange(TICK)
                first = end - TICK if first is None else first
                shortened = last and rng.random() < shorten
                last = last - 60 if shortened else max(last + 1, end - offset)
                minutes = max(1.0, minutes - 1 if shortened else minutes + (TICK - offset) / 60)
                script[end][rng.randrange(2)].append(_area(person, last, minutes, first))
            if rng.random() < 0.025:
                kind = rng.choice(["companion", "close_contact"])
                length = rng.randint(1, 40)
                script[end][rng.randrange(2)].append(exposure(person, kind, f"case-{n}", end - length * 60, end - 1, length))
    return script


DAY_IN_AREA = _with(lambda d: _area_rule(d).update(window="1d"))
"""Default rules whose area yellow lasts a day after leaving: lapses come within the scripts' two days."""


def _timeline(script: Script, hold: bool) -> list[tuple]:
    every_record = mock.patch("scoring.city.held_kinds", return_value=frozenset())
    with contextlib.nullcontext() if hold else every_record:
        scorer = CityScorer(DAY_IN_AREA, presence=lambda plans: Scripted(script))
    scorer.advance_to(T0 + 80 * HOUR, final=True)
    return [(c.person, c.at, c.level, tuple((r.rule, r.since, r.until) for r in c.reasons))
            for c in sorted_changes(scorer.take_changes())]


@settings(max_examples=40, deadline=None)
@given(_scripts())
def test_levels_moments_and_reasons_are_those_of_delivering_every_record(script: Script) -> None:
    every = _timeline(script, hold=False)
    held = _timeline(script, hold=True)

    def lines(timeline: list[tuple]) -> list[tuple]:
        # A line's reasons with their moments, the area's `since` and `until` aside (as of the last record delivered).
        return [(person, at, level, [r if r[0] != "high_risk_area" else r[0] for r in reasons])
                for person, at, level, reasons in timeline]

    assert lines(held) == lines(every)


# -- people take growth delivered late -------------------------------------------

def _area_record(last_at: int, minutes: float) -> Exposure:
    """A resident's record of a designated district since T0, known at its last presence."""
    return replace(_area("resident", last_at, minutes), known_at=last_at)


def _reassessments(monkeypatch) -> list[int]:
    import scoring.people as people_module

    calls: list[int] = []
    real = people_module.People._reassess
    monkeypatch.setattr(people_module.People, "_reassess", lambda self, *a: calls.append(1) or real(self, *a))
    return calls


def _records_given(scorer: CityScorer) -> list[Exposure]:
    """The records the scorer's people are given from now on, in order (the list fills as they are)."""
    given: list[Exposure] = []
    real = scorer.people.apply_exposure
    scorer.people.apply_exposure = lambda record: given.append(record) or real(record)  # type: ignore[method-assign]
    return given


def test_what_the_last_flush_finds_extends_what_waits_before_the_rest_is_released() -> None:
    # As at any tick, a record found extending the one waiting supersedes it: only it is delivered.
    start, waiting, last = _area("k", T0 + 20 * 60, 20), _area("k", T0 + 35 * 60, 35), _area("k", T0 + 40 * 60, 40)
    end = _tick(3) + 300
    script = {_tick(2): ([start], []), _tick(3): ([waiting], []), end: ([last], [])}
    scorer = CityScorer(DAY_IN_AREA, presence=lambda plans: Scripted(script))
    given = _records_given(scorer)
    scorer.finish(end)
    assert [e.last_at for e in given] == [start.last_at, last.last_at]


def test_held_growth_delivered_after_its_person_was_settled_past_it_is_not_assessed_again(monkeypatch) -> None:
    # Area growth waits up to six hours; meanwhile a companion record got the resident settled further.
    people = People(DEFAULT)
    reassessed = _reassessments(monkeypatch)
    changes = people.apply_exposure(_area_record(T0 + HOUR, 60))
    changes += people.apply_exposure(contact("resident", T0 + 2 * HOUR, 20, T0 + 3 * HOUR, kind="companion"))
    changes += people.settle(T0 + 4 * HOUR)
    reassessed.clear()  # (a person's first settle assesses from scratch)
    changes += people.apply_exposure(_area_record(T0 + 2 * HOUR, 120))  # dated before the settled moment
    changes += people.settle(T0 + 30 * DAY)
    assert reassessed == []
    assert lines(changes, "resident") == [
        (T0 + HOUR, "yellow", ["high_risk_area"]),
        (T0 + 3 * HOUR, "yellow", ["companion", "high_risk_area"]),
        (T0 + 2 * HOUR + 7 * DAY, "yellow", ["companion"]),  # 7 days after the grown record's last presence
        (T0 + 2 * HOUR + 20 * 60 + 7 * DAY, "green", []),
    ]


def test_held_growth_of_a_record_that_had_lapsed_at_the_settled_moment_is_a_late_fact(monkeypatch) -> None:
    # Settled past the old record's lapse, the grown one would have kept the level: that moment is assessed again.
    people = People(DEFAULT)
    reassessed = _reassessments(monkeypatch)
    changes = people.apply_exposure(_area_record(T0 + HOUR, 60))
    settled = T0 + HOUR + 7 * DAY + HOUR
    changes += people.settle(settled)
    reassessed.clear()
    changes += people.apply_exposure(_area_record(T0 + 3 * HOUR, 180))
    changes += people.settle(T0 + 30 * DAY)
    assert reassessed
    assert lines(changes, "resident") == [
        (T0 + HOUR, "yellow", ["high_risk_area"]),
        (T0 + HOUR + 7 * DAY, "green", []),
        (settled, "yellow", ["high_risk_area"]),
        (T0 + 3 * HOUR + 7 * DAY, "green", []),
    ]


# -- presence holds areas' growth as it finds it: what people are given is the same ---------------------

_DISTRICT = {"type": "Polygon", "coordinates": [[(114.29, 30.58), (114.31, 30.58), (114.31, 30.60), (114.29, 30.60),
                                                  (114.29, 30.58)]]}
_INSIDE, _OUTSIDE = (30.5900, 114.3000), (30.6500, 114.4000)


def _designation(at: int, level: str, until: int | None = None) -> AreaRisk:
    return AreaRisk(event_id=f"area-{at}-{level}", ts=from_epoch(at), area="district-3", level=level,
                    geometry=_DISTRICT, valid_until=None if until is None else from_epoch(until))


@st.composite
def _cities(draw) -> list:
    """A day and a half of five persons pinging every five minutes, in and out of a district designated high
    (then, in some cities, medium, ended, or designated again), now and then a ping late, and one person a case."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    stay = draw(st.sampled_from([0.5, 0.95, 0.999]))
    late = draw(st.sampled_from([0.0, 0.02, 0.1]))
    events: list = [(T0, _designation(T0, "high"))]
    for change in draw(st.lists(st.sampled_from(["medium", "low", "high"]), max_size=2)):
        at = T0 + 6 * HOUR + rng.randrange(DAY)
        events.append((at, _designation(at, change)))
    events.append((T0 + rng.randrange(DAY), result("d", T0, T0 + rng.randrange(DAY), positive=True)))
    for person in ("a", "b", "c", "d", "e"):
        inside = rng.random() < 0.5
        for step in range(36 * HOUR // 300):
            at = T0 + step * 300 + rng.randrange(60)
            inside = rng.random() < (stay if inside else 1 - stay)
            place = _INSIDE if inside else _OUTSIDE
            fed = at + rng.randrange(40 * 60) if rng.random() < late else at  # a late ping comes later
            events.append((fed, (person, at, place)))
    return sorted(events, key=lambda item: item[0])


class _LoopHolds(HoldsNoGrowth, LocalPresence):
    """Presence in this process that returns every record, and leaves the holding to the time loop."""


def _given(city: list, presence) -> tuple[list[Exposure], list[tuple]]:
    scorer = CityScorer(DAY_IN_AREA, presence=presence)
    given = _records_given(scorer)
    pings: list[tuple] = []  # fed together while in time order

    def feed() -> None:
        if pings:
            persons, ats, places = zip(*pings)
            scorer.add_pings(np.array(persons, dtype=object), np.array(ats), *np.array(places).T)
            pings.clear()

    for _, item in city:
        if not isinstance(item, tuple):
            feed()
            scorer.add_event(item)
            continue
        if pings and item[1] < pings[-1][1]:
            feed()
        pings.append(item)
    feed()
    scorer.finish(T0 + 2 * DAY)
    return given, [(c.person, c.at, c.level, tuple((r.rule, r.since, r.until) for r in c.reasons))
                   for c in sorted_changes(scorer.take_changes())]


@settings(max_examples=25, deadline=None)
@given(_cities())
def test_presence_holding_areas_growth_as_it_finds_it_gives_people_what_the_loop_holding_it_gives(city: list) -> None:
    held_in_presence = _given(city, LocalPresence)
    held_by_the_loop = _given(city, _LoopHolds)
    assert held_in_presence == held_by_the_loop
    assert any(record.kind == "area" for record in held_in_presence[0])
