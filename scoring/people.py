"""The person half of city scoring: every person's state, settled into level changes.

A `PersonState` is an order-independent store of facts, each with the event time at
which it became known; `assess` only counts what was known at the moment asked. So
facts may be applied in any order, and a person's level changes are *settled* later,
in event-time order, with `timeline`: from the last settled moment up to a moment
before which nothing more can arrive. A change is a new level or a new set of active
reasons (`scoring.assess.Status`). The one exception is an exposure record that
supersedes an earlier one (minutes grew, or it was retracted): the earlier record is
settled up to the moment the new one takes effect before it is replaced (by proof
rather than by assessment when the level and reasons provably hold until then, see `scoring.proof.status_holds`:
cities with an outbreak bring a new record per contact every tick). Each person's last proof is
kept (`scoring.proof.Proof`), so the next record's proof looks only at what changed since.

Replay and the stream drive this same class; they differ only in how they learn
that nothing more can arrive before a moment (the end of a sorted file, or a
watermark).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from scoring.assess import (
    LevelChange,
    Reason,
    Standing,
    Status,
    continue_timeline,
    fact_times,
    level_change,
    standing,
    timeline_to,
)
from scoring.batch import restricted_assessments
from scoring.batch import rescore as batch_rescore
from scoring.cases import case_windows
from scoring.due import DueQueue
from scoring.events import Ping, TestResult, Visit
from scoring.exposure import CaseWindow, Exposure
from scoring.proof import Proof, prove_status
from scoring.rules import LEVEL_CODE, RuleSet
from scoring.runs import extends, held_kinds
from scoring.state import PersonState, absorb_exposure, apply, apply_exposure, new_state, supersedes
from scoring.timeutil import format_rfc3339, to_epoch

GREEN = "green"


@dataclass(frozen=True, slots=True)
class PersonChange:
    """One line of a level timeline: at event time `at`, `person`'s level became `level`, or the set
    of rules giving it became `reasons`' (a reason started or lapsed while the level stayed)."""

    person: str
    at: int
    level: str
    reasons: tuple[Reason, ...]
    rule_set: str

    def to_json(self) -> dict:
        """The timeline object replay writes and the stream's codes carry."""
        return {
            "person": self.person,
            "at": format_rfc3339(self.at),
            "level": self.level,
            "reasons": [
                {
                    "rule": reason.rule,
                    "since": format_rfc3339(reason.since),
                    "until": None if reason.until is None else format_rfc3339(reason.until),
                }
                for reason in self.reasons
            ],
            "rule_set": self.rule_set,
        }


def timeline_order(change: PersonChange) -> tuple[int, str]:
    """Timelines are ordered by `at`, then `person`."""
    return (change.at, change.person)


class People:
    """Every person with facts under one rule set; each state knows how far it is settled."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._states: dict[str, PersonState] = {}
        self._due = DueQueue()
        self._late: set[str] = set()
        """Persons given a fact dated at or before the moment they were settled to."""
        self._in_force: dict[str, Standing] = {}
        """Each settled person's standing (`scoring.assess.Standing`) in force at their settled moment, while it still is.

        Facts that become known later do not change it, so the next settle continues from
        it instead of assessing that moment again; anything else that changes the state
        (a person event, a late fact, new rules or exposures) drops it."""
        self.noted: dict[str, int] | None = None
        """When not None: each person given a fact since it was last emptied, with the earliest
        moment such a fact becomes known (a stream looks there for early escalations)."""
        self._replaced: dict[str, dict[str, Exposure]] = {}
        """Per person, by exposure id: the record in force at their settled moment that a record
        not yet in force there replaced. A late fact makes that moment be assessed again, and it
        must be assessed with the facts in force then (a retraction must not act a second early)."""
        self._latest_fact: dict[str, int] = {}
        """Per person, a moment no fact of theirs becomes known after (absent: not known, their facts are
        looked at): a person in contact is scheduled after every record, and mostly nothing of theirs
        is still to become known, which this tells without looking at each fact."""
        self._held_windows = _held_windows(rules)
        self._proofs: dict[str, Proof] = {}
        """Each person's last proof that their status held (`_prove`: over a record superseded, or up
        to a record taking effect before the person is due), told of every record taken since, and
        moved on by a settle it answers (`_proved`); dropped when anything else changes the person
        (an event, a settle it does not answer, new rules)."""

    def __len__(self) -> int:
        return len(self._states)

    def state(self, person: str) -> PersonState:
        """The person's state (a fresh one if nothing is known about them)."""
        return self._states.get(person) or new_state(person)

    def levels(self) -> dict[str, str]:
        """The level each person with facts was last settled at."""
        return {person: state.level for person, state in self._states.items()}

    def states(self) -> Iterable[PersonState]:
        """Every state held."""
        return self._states.values()

    def restore(self, state: PersonState) -> None:
        """Take over a state saved earlier (a worker's store), with its pending moments."""
        self._states[state.person] = state
        self._latest_fact.pop(state.person, None)
        self._in_force.pop(state.person, None)
        self._replaced.pop(state.person, None)
        self._proofs.pop(state.person, None)
        if state.settled_at is None:
            self._due.schedule(state.person, min(fact_times(state), default=0))
        else:
            review = standing(state, self.rules, state.settled_at).next_review_at
            self._schedule_next(state.person, state.settled_at, review)

    def apply_event(self, event: Ping | Visit | TestResult) -> list[CaseWindow]:
        """Apply a person event; returns the person's case windows when it changed them.

        Pings carry nothing the level rules use: they are left to presence detection.
        """
        if isinstance(event, Ping):
            return []
        before = self.state(event.person)
        state = apply(before, event, self.rules)
        if state is before:
            return []
        self._states[event.person] = state
        self._in_force.pop(event.person, None)
        self._proofs.pop(event.person, None)
        at = state.latest_event_at
        self._note_fact(state, to_epoch(event.ts))
        windows = case_windows(state, self.rules, at)
        if windows == case_windows(before, self.rules, at):
            return []
        return windows

    def apply_exposure(self, exposure: Exposure) -> list[PersonChange]:
        """Apply an exposure record; a record it supersedes is settled up to when it takes effect.

        Until then the old record holds (a retraction included: the level falls at the
        retraction's own moment). Returns the changes that settling produced.
        """
        if not self.rules.counts_exposure(exposure.kind, exposure.level):
            # It cannot change a level, and taking it would cost a settle per record: presence
            # re-issues an area exposure every tick to everyone in a designated district. A
            # switch to rules that count it hands every person their exposures anew.
            return []
        person = exposure.person
        changes: list[PersonChange] = []
        held = self._states.get(person)
        kept: bool | None = None  # whether the record supersedes the one held (None: not worked out)
        if held is not None and exposure.exposure_id in held.exposures:
            last_under_old = exposure.effective_from - 1
            due = self._due.at(person)
            if due is not None and due <= last_under_old:
                kept = supersedes(held, exposure)
                if not (kept and self._holds(held, exposure, last_under_old)):
                    changes = self._settle_person(person, last_under_old)
            elif held.settled_at is not None and held.settled_at < last_under_old:
                # Nothing falls due before the new record takes effect: the level holds until then.
                # Proved up to there too (mostly a step of the proof kept), so that settling at the
                # new record's moment, where it makes the person due, need not assess.
                if person not in self._late and not self.rules.points_rules:  # (a points rule's proof answers nothing)
                    self._prove(held, exposure, held.settled_at, last_under_old)
                held.settled_at = last_under_old
        # Settling may have dropped a person with nothing left; People owns its states, so the
        # record is taken in place (copying every fact per record is what made replay slow).
        state = self._states.get(person) or new_state(person)
        old = state.exposures.get(exposure.exposure_id)
        if absorb_exposure(state, exposure, None if state is not held else kept):
            self._states[person] = state
            proof = self._proofs.get(person)
            if proof is not None:
                proof.took(self.rules, state, exposure)
            settled = state.settled_at
            if old is not None and settled is not None and old.effective_from <= settled < exposure.effective_from:
                self._replaced.setdefault(person, {})[exposure.exposure_id] = old
            self._note_fact(state, exposure.effective_from, old is not None and self._changes_nothing_settled(old, exposure, settled))
        return changes

    def _holds(self, held: PersonState, exposure: Exposure, last_under_old: int) -> bool:
        """Settle `held` up to `last_under_old` the cheap way when it provably reports nothing
        (`exposure` supersedes a record held).

        A person in contact with a case gets a new record every tick; mostly their level
        stays as it is (under a threshold, or already red), and proving it costs a fraction
        of settling. What settling would leave behind is kept: the settled moment, and a
        standing in force whose review is unknown (None), which is all the next settle
        needs, since the superseding record takes effect at the very next second.
        """
        start = held.settled_at
        person, status = held.person, _status(held)
        if start is None or start > last_under_old or person in self._late:
            return False
        if not self._prove(held, exposure, start, last_under_old):
            return False
        held.settled_at = last_under_old
        # Settled past its moment: due next when the new record takes effect (as `_note_fact` would make it).
        self._due.defer(person, last_under_old + 1)
        self._in_force[person] = Standing(last_under_old, status, None)
        return True

    def _prove(self, held: PersonState, exposure: Exposure, start: int, end: int) -> bool:
        """Keep a proof that `held`'s status holds over (start, end] (`exposure` is about to supersede
        a record held); False, and none kept, when it is not proved."""
        person, status = held.person, _status(held)
        last = self._proofs.get(person)
        if last is not None and last.answers(held, status, start, end):
            last.through = end  # the proof is People's own: moved on rather than copied
            return True
        proof = prove_status(held, self.rules, status, start, end, exposure.exposure_id, last)
        if proof is None:
            self._proofs.pop(person, None)
            return False
        self._proofs[person] = proof
        return True

    def _changes_nothing_settled(self, old: Exposure, new: Exposure, settled: int | None) -> bool:
        """True when `new`, superseding `old`, changes no status settled already, though it may be
        dated before the settled moment: a held kind's record (`scoring.runs`) only extending `old`,
        which gave its rules' levels through the settled moment (`new` gives them at least as long).

        Growth of such a kind waits for up to `scoring.runs.REFRESH_S` before it is delivered, mostly
        to persons settled past it since (their contacts' records came meanwhile): taking it as a late
        fact would assess the settled moment again, and leave their proofs unused until then."""
        window = self._held_windows.get(new.kind)
        return window is not None and settled is not None and settled < old.last_at + window and extends(old, new)

    def _note_fact(self, state: PersonState, moment: int, changes_nothing_settled: bool = False) -> None:
        latest = self._latest_fact.get(state.person)
        if latest is None:  # the state's first fact, or one taken over (`restore`, `replace_exposures`)
            latest = max(fact_times(state), default=moment)
        self._latest_fact[state.person] = max(latest, moment)
        if self.noted is not None:
            self.noted[state.person] = min(moment, self.noted.get(state.person, moment))
        if state.settled_at is not None and moment <= state.settled_at:
            if not changes_nothing_settled:
                self._late.add(state.person)
            self._in_force.pop(state.person, None)
            moment = state.settled_at
        self._due.schedule(state.person, moment)

    def settle(self, until: int) -> list[PersonChange]:
        """Every level change up to and including event time `until` not yet reported."""
        changes: list[PersonChange] = []
        for person in self._due.take(until):
            changes += self._settle_person(person, until)
        return changes

    def next_due(self) -> int | None:
        """The earliest moment some person is due to be settled at (None: nobody is)."""
        return self._due.next()

    def settle_all(self, until: int) -> list[PersonChange]:
        """Settle every person up to `until`, due or not (before a switch of rules)."""
        changes = self.settle(until)
        for person in list(self._states):
            changes += self._settle_person(person, until)
        return changes

    def replace_exposures(self, exposures: Iterable[Exposure]) -> None:
        """Give every person exactly these exposures (those of another contact definition)."""
        by_person: dict[str, list[Exposure]] = {}
        for exposure in exposures:
            by_person.setdefault(exposure.person, []).append(exposure)
        self._in_force.clear()
        self._replaced.clear()
        self._proofs.clear()
        for person in set(self._states) | set(by_person):
            state = self.state(person)
            cleared = replace(state, exposures={}, records=None)
            for exposure in by_person.get(person, ()):
                cleared = apply_exposure(cleared, exposure)
            self._states[person] = cleared
            self._latest_fact.pop(person, None)

    def rescore(self, rules: RuleSet, at: int) -> list[PersonChange]:
        """Switch to `rules` at event time `at`: settle under the old set, then reassess everyone.

        The batch path (numpy over all states) finds every person's level; those restricted
        under either rule set are assessed one by one for their reasons (the new rules may
        name others at the same level); the rest stay green with none. Persons whose status
        stays continue from it and find their next moment when next settled.
        """
        changes = self.settle_all(at - 1)
        self.rules = rules
        self._held_windows = _held_windows(rules)
        states = list(self._states.values())
        if not states:
            return changes
        levels = batch_rescore(states, rules, at)
        previous = np.array([LEVEL_CODE[state.level] for state in states], dtype=levels.dtype)
        restricted = restricted_assessments(states, rules, at, levels, previous)
        self._in_force.clear()
        self._proofs.clear()
        for index, state in enumerate(states):
            state.settled_at = at
            assessment = restricted.get(index)
            if assessment is None or assessment.status == _status(state):
                self._due.schedule(state.person, at + 1)
                continue
            changes.append(PersonChange(state.person, at, assessment.level, assessment.reasons, rules.ref))
            state.level, state.reasons, state.level_at = assessment.level, assessment.rule_ids, at
            self._schedule_next(state.person, at, assessment.next_review_at)
        return changes

    def _settle_person(self, person: str, until: int) -> list[PersonChange]:
        state = self._states.get(person)
        if state is None:
            return []
        start = state.settled_at
        if start is None:
            start = min(fact_times(state), default=until) - 1
        if until < start:
            return []
        proof = self._proofs.pop(person, None)
        if proof is not None and person not in self._late and proof.answers(state, _status(state), start, until):
            return self._proved(state, proof, until)
        # Settled persons continue from their level; only a late fact (dated before the
        # settled moment) may change the level at the settled moment itself.
        known = self._in_force.get(person)
        if known is not None and not self._still_in_force(known, state, start):
            known = None
        if person in self._late or state.settled_at is None:
            self._late.discard(person)
            found, in_force = self._reassess(state, start, until)
        elif known is not None:
            found, in_force = continue_timeline(state, self.rules, known, _status(state), start, until)
        else:
            found, in_force = timeline_to(state, self.rules, start, until, at_start=_status(state))
        changes = [PersonChange(person, c.at, c.level, c.reasons, self.rules.ref) for c in found]
        # People owns its states outright, so settling updates them in place (it is hot).
        state.settled_at = until
        if changes:
            last = changes[-1]
            state.level, state.reasons, state.level_at = last.level, tuple(r.rule for r in last.reasons), last.at
        self._in_force[person] = in_force
        self._replaced_at(state, until)  # what is in force at the settled moment is all it can need
        due = self._due.at(person)
        if due is not None and due <= until:
            self._due.drop(person)  # a moment now settled must not hide the next one
        self._schedule_next(person, until, in_force.next_review_at)
        return changes

    def _proved(self, state: PersonState, proof: Proof, until: int) -> list[PersonChange]:
        """Settle a person up to `until` by the proof kept since their last record, which answers that span.

        Most of a tick's settles are of persons whose contact grew the tick before; nothing
        can change before the proof's horizon, so they are looked at again then (or at their
        next fact), and the proof goes on to answer their next record's span.
        """
        person = state.person
        proof.through = until
        self._proofs[person] = proof
        state.settled_at = until
        self._in_force[person] = Standing(until, proof.status, proof.review)
        self._replaced_at(state, until)
        due = self._due.at(person)
        if due is not None and due <= until:
            self._due.drop(person)
        self._schedule_next(person, until, proof.review)
        return []

    def _reassess(self, state: PersonState, start: int, until: int) -> tuple[list[LevelChange], Standing]:
        """The changes in [start, until] of a person given a late fact: `start` is assessed again."""
        replaced = self._replaced_at(state, start)
        if not replaced:
            return timeline_to(state, self.rules, start, until, before=_status(state))
        as_then = replace(state, exposures={**state.exposures, **replaced}, records=None)
        current = standing(as_then, self.rules, start)
        found = [level_change(as_then, self.rules, start)] if current.status != _status(state) else []
        following, in_force = continue_timeline(state, self.rules, current, current.status, start, until)
        return found + following, in_force

    def _still_in_force(self, kept: Standing, state: PersonState, start: int) -> bool:
        """True when `kept`, a standing found earlier, serves as the one in force at `start`.

        It does when no fact became known and no review fell due in between. (A moment
        skipped when the settled moment was moved on is thereby assessed as before: from
        `start`, not at the skipped moment.)
        """
        review = kept.next_review_at
        if review is not None and review <= start:
            return False
        upcoming = self._next_fact(state, kept.at)
        return upcoming is None or upcoming > start

    def _next_fact(self, state: PersonState, after: int) -> int | None:
        """The first moment after `after` a fact of `state` becomes known (None: none does)."""
        latest = self._latest_fact.get(state.person)
        if latest is not None and latest <= after:
            return None
        return next((t for t in fact_times(state) if t > after), None)

    def _replaced_at(self, state: PersonState, moment: int) -> dict[str, Exposure]:
        """The replaced records still in force at `moment` (those whose successors are, are dropped)."""
        replaced = self._replaced.get(state.person)
        if replaced is None:
            return {}
        for exposure_id in list(replaced):
            successor = state.exposures.get(exposure_id)
            if successor is None or successor.effective_from <= moment:
                del replaced[exposure_id]
        if not replaced:
            del self._replaced[state.person]
        return replaced

    def _schedule_next(self, person: str, after: int, review: int | None) -> None:
        """Schedule the person's next moment after `after`: a fact becoming known, or `review`."""
        state = self._states[person]
        upcoming = self._next_fact(state, after)
        if upcoming is not None and (review is None or upcoming < review):
            self._due.schedule(person, upcoming)
        elif review is not None:
            self._due.schedule(person, review)
        elif not state.has_facts() and state.level == GREEN:
            # Nothing left that could change a green person: dropping them bounds memory.
            del self._states[person]
            self._latest_fact.pop(person, None)
            self._in_force.pop(person, None)
            self._replaced.pop(person, None)
            self._proofs.pop(person, None)


def _held_windows(rules: RuleSet) -> dict[str, int]:
    """The shortest window of the rules reading each kind whose growth may wait (`scoring.runs.held_kinds`)."""
    return {kind: min(rule.window for rule in rules.rules_of(kind)) for kind in held_kinds(rules)}


def _status(state: PersonState) -> Status:
    """The level and reason set last reported for the person."""
    return (state.level, state.reasons)


def sorted_changes(changes: Iterable[PersonChange]) -> list[PersonChange]:
    """Changes in timeline order, with several changes of a person at one moment merged into the last."""
    last: dict[tuple[str, int], PersonChange] = {}
    for change in changes:
        last[(change.person, change.at)] = change
    return sorted(last.values(), key=timeline_order)
