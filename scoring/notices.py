"""Case notices ahead of scoring: who became a case (or stopped being one) and when.

A stream worker learns of cases from the person events of the partitions it owns,
in event-time order, and broadcasts them so every worker's presence index hears of
every case. Case windows depend only on a person's own tests and visits, so this
tracker can run ahead of scoring without waiting for anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence

from scoring.cases import case_windows
from scoring.city import CaseNotice
from scoring.events import TestResult, Visit
from scoring.rules import RuleSet
from scoring.state import PersonState, apply, new_state
from scoring.timeutil import to_epoch


class CaseTracker:
    """The tests and visits of persons, enough to tell their case windows.

    With several rule sets, the case definition in force at an event's time applies.
    """

    def __init__(self, rules: RuleSet | Sequence[RuleSet]) -> None:
        history = [rules] if isinstance(rules, RuleSet) else list(rules)
        self.history = sorted(history, key=lambda r: r.valid_from)
        self._states: dict[str, PersonState] = {}

    def rules_at(self, at: int) -> RuleSet:
        """The rule set in force at event time `at`."""
        current = self.history[0]
        for rules in self.history[1:]:
            if rules.valid_from <= at:
                current = rules
        return current

    def apply(self, event: Visit | TestResult) -> list[CaseNotice]:
        """Apply a person event; the person's case windows as notices when it changed them."""
        before = self._states.get(event.person) or new_state(event.person)
        rules = self.rules_at(to_epoch(event.ts))
        state = apply(before, event, rules)
        if state is before:
            return []
        self._states[event.person] = state
        at = state.latest_event_at
        windows = case_windows(state, rules, at)
        if windows == case_windows(before, rules, at):
            return []
        return [CaseNotice(window, at) for window in windows]

    def peek(self, person: str, events: Sequence[Visit | TestResult]) -> list[CaseNotice]:
        """The live case windows of `person` once `events` (not applied yet) are, if they differ
        from the windows known now; nothing is kept (early case notices)."""
        before = self._states.get(person) or new_state(person)
        state = before
        for event in sorted(events, key=lambda e: to_epoch(e.ts)):
            state = apply(state, event, self.rules_at(to_epoch(event.ts)))
        if state is before:
            return []
        at = state.latest_event_at
        rules = self.rules_at(at)
        windows = [window for window in case_windows(state, rules, at) if not window.retracted]
        if windows == [window for window in case_windows(before, rules, at) if not window.retracted]:
            return []
        return [CaseNotice(window, at) for window in windows]
