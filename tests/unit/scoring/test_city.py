"""City scoring with rule sets that take effect at their valid_from, contacts redefined included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from scoring.city import CityScorer, index_plans
from scoring.exposure import Exposure
from scoring.people import sorted_changes
from scoring.rules import RuleSet, load_rule_set
from scoring.synthetic import DAY, HOUR, exposure, result
from scoring.timeutil import format_rfc3339

from tests.unit.scoring.scripted import Scripted

RULES = Path(__file__).resolve().parents[3] / "rules"
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z
HERE = (30.5900, 114.3000)


def _points_from(valid_from: int) -> RuleSet:
    document = yaml.safe_load((RULES / "points.yaml").read_text())
    document["valid_from"] = format_rfc3339(valid_from)
    return RuleSet.from_mapping(document, "points.yaml")


def _feed(scorer: CityScorer, minutes: int) -> None:
    """Case `c` and contact `k` side by side from T0 for `minutes`, then `c` confirmed a day later."""
    steps = np.arange(0, minutes + 1, 5) * 60 + T0
    for person in ("c", "k"):
        scorer.add_pings(np.full(len(steps), person, dtype=object), steps,
                         np.full(len(steps), HERE[0]), np.full(len(steps), HERE[1]))
    scorer.add_event(result("c", T0 + DAY, T0 + DAY + 6 * HOUR, positive=True))


def test_a_rule_set_takes_effect_at_its_valid_from_and_everyone_is_reassessed_then() -> None:
    default = load_rule_set(RULES / "default.yaml")
    switch = T0 + 3 * DAY
    scorer = CityScorer([default, _points_from(switch)])
    _feed(scorer, 20)
    changes = sorted_changes(scorer.finish(T0 + 5 * DAY))
    before = [c for c in changes if c.at < switch]
    after = [c for c in changes if c.at >= switch]
    assert before and all(c.rule_set == default.ref for c in before)
    assert after and all(c.rule_set.startswith("points@") for c in after)
    assert {c.at for c in after if c.person == "k"} == {switch}


def test_switching_rules_gives_the_same_levels_as_scoring_with_the_new_rules_from_the_start() -> None:
    default = load_rule_set(RULES / "default.yaml")
    switch = T0 + 3 * DAY
    points = _points_from(switch)
    switched = CityScorer([default, points])
    _feed(switched, 20)
    from_start = CityScorer(_points_from(T0 - DAY))
    _feed(from_start, 20)
    end = T0 + 5 * DAY
    switched.finish(end)
    from_start.finish(end)
    assert switched.people.levels() == from_start.people.levels()


def test_only_an_index_whose_rule_sets_weigh_days_has_its_records_carry_minutes_by_day() -> None:
    default = load_rule_set(RULES / "default.yaml")
    points = _points_from(T0)
    assert [plan.by_day for plan in index_plans([default, points])] == [False, True]
    for rules, by_day in ((default, False), (points, True)):
        scorer = CityScorer(rules)
        given: list[Exposure] = []
        apply = scorer.people.apply_exposure
        scorer.people.apply_exposure = lambda record: given.append(record) or apply(record)
        _feed(scorer, 20)
        scorer.finish(T0 + 2 * DAY)
        assert given and all(bool(record.minutes_by_day) == by_day for record in given)


FAR_FUTURE = 253_402_214_400  # 9999-12-31T00:00:00Z


def test_an_event_far_in_the_future_costs_the_ticks_that_do_something_not_the_span() -> None:
    # Stepping tick by tick from 2022 to 9999 would be some 280 million ticks (hours).
    scorer = CityScorer(load_rule_set(RULES / "default.yaml"))
    _feed(scorer, 20)
    scorer.add_event(result("late", FAR_FUTURE, FAR_FUTURE, positive=False))
    scorer.finish()
    assert scorer.counts.ticks < 2_000


def test_jumping_quiet_ticks_gives_the_timeline_of_stepping_through_every_tick() -> None:
    default = load_rule_set(RULES / "default.yaml")
    rules = [default, _points_from(T0 + 3 * DAY + 7 * 60)]
    jumped = CityScorer(rules)
    _feed(jumped, 20)
    stepped = CityScorer(rules)
    _feed(stepped, 20)
    end = T0 + 40 * DAY
    for watermark in range(T0 + DAY + 6 * HOUR, end, stepped.tick_s):
        stepped.advance_to(watermark)  # a stream whose watermark moves every tick: no tick is skipped
    timeline = sorted_changes(jumped.finish(end))
    assert timeline == sorted_changes(stepped.finish(end))
    assert {c.level for c in timeline} >= {"red", "green"}  # up and back down: decay reviews included
    assert jumped.counts.ticks < stepped.counts.ticks / 10


def test_a_stay_closed_by_time_passing_counts_from_its_own_moment_though_a_ping_of_the_tick_came_first() -> None:
    # `k` is a companion of one case all morning, a record every tick (found by their pings). At 09:00
    # time passing also closes a 28-minute close contact with another case that ended at 08:48: `k` is
    # red from 08:48, not from when the tick's companion record (08:59) made them settled that far.
    tick = 15 * 60

    def companion(until: int) -> Exposure:
        return exposure("k", "companion", "case-1", T0, until, (until - T0) / 60)

    close = exposure("k", "close_contact", "case-2", T0 + 20 * 60, T0 + 48 * 60, 28)
    script = {T0 + n * tick: ([companion(T0 + n * tick - 60)], []) for n in (1, 2, 3)}
    script[T0 + 4 * tick] = ([companion(T0 + 4 * tick - 60)], [close])
    scorer = CityScorer(load_rule_set(RULES / "default.yaml"), presence=lambda plans: Scripted(script))
    scorer.advance_to(T0 + 2 * HOUR, final=True)
    changes = [(format_rfc3339(c.at), c.level, [r.rule for r in c.reasons])
               for c in sorted_changes(scorer.take_changes()) if c.person == "k"]
    assert changes == [
        ("2022-04-01T08:14:00Z", "yellow", ["companion"]),
        ("2022-04-01T08:48:00Z", "red", ["close_contact", "companion"]),
    ]
