"""The health system: fever clinics, tests, confirmation, diagnosis, isolation, discharge.

It runs on an agenda of timed actions (a heap), processed as simulated time passes,
so a result known tomorrow can still change what happens the day after. What it
does to people's whereabouts (home while sick or awaiting a result, at hospital for
a visit, isolated on a ward once diagnosed) is kept as time windows that
`relocate` applies to each slot's location vector.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from simulators.city import City
from simulators.config import DiseaseConfig, HealthConfig
from simulators.frames import (
    ANTIGEN,
    DIAGNOSIS,
    FEVER_CLINIC,
    NEGATIVE,
    PCR,
    POSITIVE,
    RECOVERY,
    TEST_RESULT,
    TESTS,
    VISIT,
    Serials,
)
from simulators.transmission import NEVER, Epidemic

ONSET, CLINIC, SAMPLE, RESULT, DIAGNOSE, DISCHARGE = range(6)
UNTESTED, CONFIRMING, DIAGNOSED = 0, 1, 2
_HOUR = 3_600
_DAY = 86_400
_CLINIC_HOURS = (8.0, 20.0)
_SCREENING_HOURS = (8.0, 18.0)
_VISIT_SLOTS = 2
_CONFIRMATION_HOURS = (1.0, 4.0)
_VISIT_REPORT_SECONDS = 300
_RESULT_REPORT_SECONDS = 60


@dataclass
class Windows:
    """Per-person [from, until) epoch windows; an empty window is (NEVER, NEVER)."""

    start: np.ndarray
    until: np.ndarray

    @classmethod
    def empty(cls, residents: int) -> Windows:
        return cls(np.full(residents, NEVER, dtype=np.int64), np.full(residents, NEVER, dtype=np.int64))

    def open(self, person: int, start: int, until: int) -> None:
        """Cover [start, until) too (merged with a window still open)."""
        if self.until[person] != NEVER and self.until[person] >= start:
            self.start[person] = min(self.start[person], start)
            self.until[person] = max(self.until[person], until)
        else:
            self.start[person], self.until[person] = start, until

    def active(self, moment: int) -> np.ndarray:
        """Who is inside their window at `moment`."""
        return (self.start <= moment) & (moment < self.until)


@dataclass
class HealthSystem:
    """The agenda, the people's health-system state, and the events it has produced."""

    city: City
    epidemic: Epidemic
    config: HealthConfig
    disease: DiseaseConfig
    utc_offset_seconds: int
    slot_seconds: int
    serials: Serials
    agenda: list[tuple[int, int, int, int, tuple]] = field(default_factory=list)
    emitted: list[dict[str, int]] = field(default_factory=list)
    cases: list[tuple[int, int]] = field(default_factory=list)
    _order: count = field(default_factory=count)

    def __post_init__(self) -> None:
        n = self.city.residents
        self.at_home = Windows.empty(n)
        self.at_clinic = Windows.empty(n)
        self.isolated = Windows.empty(n)
        self.status = np.zeros(n, dtype=np.int8)
        self.diagnosed_at = np.full(n, NEVER, dtype=np.int64)
        self.first_positive_at = np.full(n, NEVER, dtype=np.int64)

    # --- scheduling -------------------------------------------------------

    def _plan(self, moment: int, action: int, person: int, *details: int) -> None:
        heapq.heappush(self.agenda, (int(moment), next(self._order), action, int(person), details))

    def _daytime(self, moment: int, rng: np.random.Generator) -> int:
        """`moment`, or a random time in the next clinic opening hours if it falls outside them."""
        local = moment + self.utc_offset_seconds
        hour = (local % _DAY) / _HOUR
        if _CLINIC_HOURS[0] <= hour < _CLINIC_HOURS[1]:
            return moment
        next_open = local - local % _DAY + int(_CLINIC_HOURS[0] * _HOUR) + (_DAY if hour >= _CLINIC_HOURS[1] else 0)
        return next_open - self.utc_offset_seconds + int(rng.uniform(0, 4 * _HOUR))

    def _visit_hospital(self, person: int, moment: int) -> None:
        slot_start = moment - moment % self.slot_seconds
        self.at_clinic.open(person, slot_start, slot_start + _VISIT_SLOTS * self.slot_seconds)

    def _schedule_clinic(self, person: int, moment: int) -> None:
        self._plan(moment, CLINIC, person)
        self._visit_hospital(person, moment)

    def infected(self, people: np.ndarray, now: int) -> None:
        """Put the symptom onsets of newly infected people on the agenda (an onset
        before `now`, of someone infected before the run, is acted on at `now`)."""
        for person in people:
            onset = self.epidemic.symptom_onset[person]
            if onset != NEVER:
                self._plan(max(int(onset), now), ONSET, person)

    def start_day(self, day_index: int, day_start: int, rng: np.random.Generator) -> None:
        """Plan the day's routine screening and the clinic visits of people with other fevers."""
        n = self.city.residents
        if self.config.screening_share > 0 and day_index % self.config.screening_every_days == 0:
            test = TESTS.index(self.config.screening_test)
            for person in np.flatnonzero(rng.random(n) < self.config.screening_share):
                moment = day_start + int(rng.uniform(*_SCREENING_HOURS) * _HOUR)
                self._plan(moment, SAMPLE, person, test, 0)
        for person in np.flatnonzero(rng.random(n) < self.config.background_fever_per_day):
            self._schedule_clinic(person, day_start + int(rng.uniform(*_CLINIC_HOURS) * _HOUR))

    # --- what happens ------------------------------------------------------

    def run_until(self, moment: int, rng: np.random.Generator) -> None:
        """Carry out every action due before `moment`, in time order."""
        while self.agenda and self.agenda[0][0] < moment:
            when, _, action, person, details = heapq.heappop(self.agenda)
            if action == ONSET:
                self._onset(person, when, rng)
            elif action == CLINIC:
                self._clinic(person, when, rng)
            elif action == SAMPLE:
                self._sample(person, when, details[0], bool(details[1]), rng)
            elif action == RESULT:
                self._result(person, when, *details, rng=rng)
            elif action == DIAGNOSE:
                self._diagnose(person, when, rng)
            else:
                self._emit(VISIT, when, person, _VISIT_REPORT_SECONDS, rng, kind=RECOVERY)

    def _emit(
        self, event_type: int, moment: int, person: int, report_within: int, rng: np.random.Generator, **fields: int
    ) -> None:
        row = {
            "serial": int(self.serials.take(1)[0]),
            "type": event_type,
            "ts": moment,
            "arrival": moment + int(rng.integers(0, report_within)),
            "person": person,
            "facility": int(np.searchsorted(self.city.hospital_places, self.city.person_hospital[person])),
        }
        row.update(fields)
        self.emitted.append(row)

    def _onset(self, person: int, moment: int, rng: np.random.Generator) -> None:
        if self.status[person] == DIAGNOSED:
            return
        if rng.random() < self.disease.stay_home_when_sick:
            self.at_home.open(person, moment, int(self.epidemic.recovered_at[person]))
        if rng.random() < self.config.clinic_visit:
            delay = int(rng.exponential(self.config.clinic_delay_days * _DAY)) if self.config.clinic_delay_days else 0
            self._schedule_clinic(person, self._daytime(moment + delay, rng))

    def _infectious(self, person: int, moment: int) -> bool:
        return bool(self.epidemic.infectious_from[person] <= moment < self.epidemic.infectious_until[person])

    def _draw_result(self, person: int, moment: int, test: int, rng: np.random.Generator) -> int:
        sensitivity, specificity = (
            (self.config.pcr_sensitivity, self.config.pcr_specificity)
            if test == PCR
            else (self.config.antigen_sensitivity, self.config.antigen_specificity)
        )
        chance = sensitivity if self._infectious(person, moment) else 1.0 - specificity
        return POSITIVE if rng.random() < chance else NEGATIVE

    def _result_time(self, moment: int, test: int, rng: np.random.Generator) -> int:
        if test == PCR:
            return moment + int(rng.uniform(*self.config.pcr_delay_hours) * _HOUR)
        return moment + int(rng.uniform(*self.config.antigen_delay_minutes) * 60)

    def _clinic(self, person: int, moment: int, rng: np.random.Generator) -> None:
        if self.status[person] == DIAGNOSED:
            return
        self._emit(VISIT, moment, person, _VISIT_REPORT_SECONDS, rng, kind=FEVER_CLINIC)
        self._sample(person, moment, ANTIGEN, False, rng)
        known = self._sample(person, moment, PCR, False, rng)
        self.at_home.open(person, moment + _HOUR, known)

    def _sample(self, person: int, moment: int, test: int, confirmation: bool, rng: np.random.Generator) -> int:
        """Take a sample now; its result is decided by the state now and known later."""
        if self.status[person] == DIAGNOSED:
            return moment
        outcome = self._draw_result(person, moment, test, rng)
        known = self._result_time(moment, test, rng)
        self._plan(known, RESULT, person, moment, test, outcome, int(confirmation))
        return known

    def _result(
        self,
        person: int,
        moment: int,
        sampled: int,
        test: int,
        outcome: int,
        confirmation: int,
        *,
        rng: np.random.Generator,
    ) -> None:
        self._emit(
            TEST_RESULT, moment, person, _RESULT_REPORT_SECONDS, rng, sampled_at=sampled, test=test, result=outcome
        )
        if outcome != POSITIVE:
            if confirmation and self.status[person] == CONFIRMING:
                self.status[person] = UNTESTED
            return
        self.first_positive_at[person] = min(self.first_positive_at[person], moment)
        if confirmation:
            if self.status[person] == CONFIRMING:
                self._plan(moment + int(rng.uniform(*self.config.diagnosis_delay_hours) * _HOUR), DIAGNOSE, person)
        elif self.status[person] == UNTESTED:
            self.status[person] = CONFIRMING
            retest = moment + int(rng.uniform(*_CONFIRMATION_HOURS) * _HOUR)
            self._plan(retest, SAMPLE, person, PCR, 1)
            self._visit_hospital(person, retest)

    def _diagnose(self, person: int, moment: int, rng: np.random.Generator) -> None:
        self.status[person] = DIAGNOSED
        self.diagnosed_at[person] = moment
        self._emit(VISIT, moment, person, _VISIT_REPORT_SECONDS, rng, kind=DIAGNOSIS)
        recovered = self.epidemic.recovered_at[person]
        earliest = moment + int(self.config.minimum_stay_days * _DAY)
        discharge = max(earliest, int(recovered) if recovered != NEVER else earliest) + int(rng.uniform(0, _DAY))
        self.isolated.open(person, moment, discharge)
        self._plan(discharge, DISCHARGE, person)
        self.cases.append((moment, int(self.city.person_district[person])))

    def relocate(self, location: np.ndarray, moment: int) -> None:
        """Apply staying home, hospital visits and isolation to a slot's location vector."""
        home = self.at_home.active(moment)
        location[home] = self.city.person_home[home]
        for windows in (self.at_clinic, self.isolated):
            inside = windows.active(moment)
            location[inside] = self.city.person_hospital[inside]
