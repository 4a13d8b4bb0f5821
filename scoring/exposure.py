"""The records that pass between presence detection and person scoring.

Presence detection (keyed by cell) learns of cases through `CaseWindow`s and
reports co-presence as `Exposure`s (keyed by the exposed person). Person scoring
turns exposures into levels through the rule set. Neither record carries another
person's pseudonym or a coordinate: `source` is an opaque reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

AREA = "area"


def opaque_ref(*parts: str) -> str:
    """A short, stable, non-reversible reference (16 hex chars) for a case or a designation."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """How one kind of contact is detected, as a rule set defines it."""

    kind: str
    """The signal name in the rule set, e.g. `close_contact` or `companion`."""
    resolution: int
    """H3 resolution of the cell that counts as the same place (e.g. 10 ~ 65 m edge, 8 ~ 460 m)."""
    max_gap_s: int
    """A ping stands for presence until the person's next ping, but at most this long."""
    include_neighbours: bool
    """Also count the H3 ring-1 neighbours of a cell as the same place (cell-border contacts)."""
    lookback_s: int
    """How long presence is kept and searched backwards for this kind."""


@dataclass(frozen=True, slots=True)
class CaseWindow:
    """A case as presence detection sees it: whose presence is infectious, and when."""

    case_ref: str
    """Opaque reference of the case episode (see `opaque_ref`); what exposures name as source."""
    person: str
    """The case's pseudonym, used only to find their own presence; never emitted."""
    infectious_from: int
    infectious_until: int | None
    """None while the case is still infectious (not isolated): forward detection continues."""
    retracted: bool = False
    """True when the positive result was corrected: exposures it caused are withdrawn."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """Cumulative co-presence of one person with one source (a case, or a designated area).

    A later record with the same `exposure_id` supersedes an earlier one. Minutes usually
    grow; a late ping that shortens a stay can lower them, and `retracted=True` withdraws
    the exposure entirely.
    """

    exposure_id: str
    person: str
    kind: str
    """A contact kind from the rule set (`close_contact`, `companion`, ...) or `area`."""
    source: str
    """Opaque case or designation reference."""
    first_at: int
    last_at: int
    minutes: float
    minutes_by_day: tuple[tuple[int, float], ...] = ()
    """Co-presence minutes per day offset from the source case's `infectious_from`."""
    level: str | None = None
    """For area exposures: the designation's level (`medium` or `high`)."""
    retracted: bool = False
    known_at: int | None = None
    """The event time at which this record became known: the later of its last contact and
    the moment its source became known (a case confirmed, an area designated). Backward
    contacts of a case confirmed today are known today, not on the day of contact.
    None means `first_at` (a record written by hand, as in rule tests)."""

    @property
    def effective_from(self) -> int:
        """From when scoring may count this record."""
        return self.first_at if self.known_at is None else self.known_at

    @staticmethod
    def make_id(person: str, kind: str, source: str) -> str:
        """The deterministic id of the exposure of `person` to `source` of this kind."""
        return opaque_ref("exposure", person, kind, source)


_NEW = object.__new__
(_SET_ID, _SET_PERSON, _SET_KIND, _SET_SOURCE, _SET_FIRST, _SET_LAST, _SET_MINUTES, _SET_BY_DAY, _SET_LEVEL,
 _SET_RETRACTED, _SET_KNOWN) = (Exposure.__dict__[f.name].__set__ for f in fields(Exposure))


def exposure_record(
    exposure_id: str,
    person: str,
    kind: str,
    source: str,
    first_at: int,
    last_at: int,
    minutes: float,
    minutes_by_day: tuple[tuple[int, float], ...],
    level: str | None,
    retracted: bool,
    known_at: int | None,
) -> Exposure:
    """`Exposure(...)` with every field given, in order: the same record, built a third as fast.

    Presence builds a record per co-present pair per tick (millions in an outbreak city); a
    frozen dataclass's `__init__` sets each field through `object.__setattr__`, while the
    slots' own setters do it directly.
    """
    exposure = _NEW(Exposure)
    _SET_ID(exposure, exposure_id)
    _SET_PERSON(exposure, person)
    _SET_KIND(exposure, kind)
    _SET_SOURCE(exposure, source)
    _SET_FIRST(exposure, first_at)
    _SET_LAST(exposure, last_at)
    _SET_MINUTES(exposure, minutes)
    _SET_BY_DAY(exposure, minutes_by_day)
    _SET_LEVEL(exposure, level)
    _SET_RETRACTED(exposure, retracted)
    _SET_KNOWN(exposure, known_at)
    return exposure


def known_from(exposure: Exposure, moment: int) -> Exposure:
    """The record with `known_at` = `moment` (`dataclasses.replace`, five times as fast: the loop
    stamps every contact record presence finds with when its case became known)."""
    return exposure_record(
        exposure.exposure_id, exposure.person, exposure.kind, exposure.source, exposure.first_at, exposure.last_at,
        exposure.minutes, exposure.minutes_by_day, exposure.level, exposure.retracted, moment,
    )
