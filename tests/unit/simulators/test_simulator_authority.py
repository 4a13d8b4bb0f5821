"""District designations rise with cases and fall after quiet days (9th-edition protocol)."""

from __future__ import annotations

from simulators.authority import Authority
from simulators.config import AuthorityConfig
from simulators.frames import HIGH, LOW, MEDIUM

DAY = 86_400


def _authority() -> Authority:
    return Authority(
        3, AuthorityConfig(high_cases=3, medium_cases=1, high_clear_days=7, medium_clear_days=3, window_days=7)
    )


def test_a_case_makes_its_district_medium_and_enough_cases_make_it_high() -> None:
    authority = _authority()
    assert authority.decide(DAY, [(DAY - 100, 1)]) == [(1, MEDIUM)]
    cases = [(DAY - 100, 1), (2 * DAY - 300, 1), (2 * DAY - 200, 1)]
    assert authority.decide(2 * DAY, cases) == [(1, HIGH)]
    assert authority.decide(3 * DAY, cases) == []


def test_high_is_lowered_to_medium_after_seven_quiet_days_then_to_low_after_three() -> None:
    authority = _authority()
    cases = [(DAY - 30, 0), (DAY - 20, 0), (DAY - 10, 0)]
    assert authority.decide(DAY, cases) == [(0, HIGH)]
    decisions = {day: authority.decide(day * DAY, cases) for day in range(2, 13)}
    assert decisions[8] == [(0, MEDIUM)]
    assert decisions[11] == [(0, LOW)]
    assert all(changes == [] for day, changes in decisions.items() if day not in (8, 11))


def test_a_new_case_resets_the_quiet_period_and_no_stale_case_raises_again() -> None:
    authority = _authority()
    cases = [(DAY - 10, 2)]
    assert authority.decide(DAY, cases) == [(2, MEDIUM)]
    cases.append((3 * DAY - 10, 2))
    assert authority.decide(3 * DAY, cases) == []
    assert authority.decide(5 * DAY, cases) == []
    assert authority.decide(6 * DAY, cases) == [(2, LOW)]
    assert authority.decide(7 * DAY, cases) == []


def test_cases_after_the_decision_time_are_not_yet_known() -> None:
    authority = _authority()
    assert authority.decide(DAY, [(DAY + 5, 0)]) == []
