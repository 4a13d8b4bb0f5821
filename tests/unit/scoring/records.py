"""Records and timeline lines for the tests of person scoring, written by hand."""

from __future__ import annotations

from dataclasses import replace

from scoring.exposure import Exposure
from scoring.people import PersonChange
from scoring.synthetic import exposure

MINUTE = 60


def contact(person: str, first_at: int, minutes: float, known_at: int, *, kind: str = "close_contact",
            retracted: bool = False) -> Exposure:
    """`person`'s contact with case `case-1` from `first_at` lasting `minutes`, known at `known_at`."""
    record = exposure(person, kind, "case-1", first_at, first_at + int(minutes * MINUTE), minutes, retracted=retracted)
    return replace(record, known_at=known_at)


def lines(changes: list[PersonChange], person: str) -> list[tuple[int, str, list[str]]]:
    """`person`'s timeline lines: (moment, level, rule ids)."""
    return [(c.at, c.level, [r.rule for r in c.reasons]) for c in changes if c.person == person]
