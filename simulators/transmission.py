"""Infection spreads only between people in the same place in the same time slot.

Each susceptible person sharing a place with infectious people escapes infection
for a slot with probability (1 - beta)^(minutes x summed infectiousness), beta
being the per-minute chance for that kind of place. The infector is drawn among
the infectious people present, weighted by infectiousness, so every infection
has a known source that really was there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import HOME, HOSPITAL, SCHOOL, VENUE, WORK, City
from simulators.config import DiseaseConfig

NEVER = np.iinfo(np.int64).max
NOBODY = -1
SEEDED = -2
"""`infection_place` of people infected before the simulation starts (imported cases)."""
_GAMMA_SHAPE = 4.0


@dataclass
class Epidemic:
    """The ground truth of every resident's infection, in epoch seconds (NEVER if not)."""

    infected_at: np.ndarray
    infector: np.ndarray
    infection_place: np.ndarray
    infectious_from: np.ndarray
    infectious_until: np.ndarray
    symptom_onset: np.ndarray
    recovered_at: np.ndarray
    asymptomatic: np.ndarray

    @classmethod
    def none_infected(cls, residents: int) -> Epidemic:
        """Everyone susceptible."""

        def never() -> np.ndarray:
            return np.full(residents, NEVER, dtype=np.int64)

        return cls(
            infected_at=never(),
            infector=np.full(residents, NOBODY, dtype=np.int32),
            infection_place=np.full(residents, NOBODY, dtype=np.int32),
            infectious_from=never(),
            infectious_until=never(),
            symptom_onset=never(),
            recovered_at=never(),
            asymptomatic=np.zeros(residents, dtype=bool),
        )

    def infectious_at(self, moment: int) -> np.ndarray:
        """Boolean mask of who is infectious at `moment`."""
        return (self.infectious_from <= moment) & (moment < self.infectious_until)

    def infect(
        self,
        people: np.ndarray,
        at: np.ndarray,
        infector: np.ndarray,
        place: np.ndarray,
        config: DiseaseConfig,
        rng: np.random.Generator,
    ) -> None:
        """Record infections and draw each one's course (latent, infectious, symptoms, recovery)."""
        count = people.size
        day = 86_400.0

        def duration(mean_days: float) -> np.ndarray:
            return (rng.gamma(_GAMMA_SHAPE, mean_days * day / _GAMMA_SHAPE, count)).astype(np.int64)

        asymptomatic = rng.random(count) < config.asymptomatic_share
        infectious_from = at + np.maximum(duration(config.latent_days), 3_600)
        onset = infectious_from + duration(config.presymptomatic_days)
        symptomatic_until = onset + duration(config.symptomatic_infectious_days)
        silent_until = infectious_from + duration(config.asymptomatic_infectious_days)
        until = np.where(asymptomatic, silent_until, np.maximum(symptomatic_until, onset + 1))
        lingering = duration(config.symptoms_after_infectious_days) if config.symptoms_after_infectious_days else 0
        self.infected_at[people] = at
        self.infector[people] = infector
        self.infection_place[people] = place
        self.infectious_from[people] = infectious_from
        self.infectious_until[people] = until
        self.symptom_onset[people] = np.where(asymptomatic, NEVER, onset)
        self.recovered_at[people] = np.where(asymptomatic, until, until + lingering)
        self.asymptomatic[people] = asymptomatic


def seed_infections(
    epidemic: Epidemic, count: int, start: int, config: DiseaseConfig, rng: np.random.Generator
) -> np.ndarray:
    """Infect `count` random residents at random times in the days before `start`."""
    residents = epidemic.infected_at.size
    people = np.sort(rng.choice(residents, size=min(count, residents), replace=False))
    before = (rng.uniform(0.0, config.latent_days + config.presymptomatic_days, people.size) * 86_400).astype(np.int64)
    epidemic.infect(people, start - before, np.full(people.size, NOBODY), np.full(people.size, SEEDED), config, rng)
    return people


def beta_by_place_kind(config: DiseaseConfig) -> np.ndarray:
    """Per-minute transmission chance by place kind; isolation wards transmit nothing."""
    beta = np.zeros(5)
    beta[HOME], beta[WORK], beta[SCHOOL], beta[VENUE], beta[HOSPITAL] = (
        config.beta_home,
        config.beta_work,
        config.beta_school,
        config.beta_venue,
        0.0,
    )
    return beta


def transmit(
    epidemic: Epidemic,
    city: City,
    location: np.ndarray,
    moment: int,
    minutes: int,
    config: DiseaseConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Infections during the slot starting at `moment`, given where everyone is; returns who."""
    infectious = np.flatnonzero(epidemic.infectious_at(moment))
    if infectious.size == 0:
        return infectious
    weight = np.where(epidemic.asymptomatic[infectious], config.asymptomatic_infectiousness, 1.0)
    where = location[infectious]
    log_escape = np.log1p(-beta_by_place_kind(config))[city.place_kind[where]]
    hazard = np.zeros(city.place_kind.size)
    np.add.at(hazard, where, -log_escape * weight * minutes)
    exposed = np.flatnonzero((hazard[location] > 0) & (epidemic.infected_at == NEVER))
    if exposed.size == 0:
        return exposed
    caught = exposed[rng.random(exposed.size) < -np.expm1(-hazard[location[exposed]])]
    if caught.size == 0:
        return caught
    infectors = np.empty(caught.size, dtype=np.int32)
    for k, person in enumerate(caught):
        present = where == location[person]
        odds = weight[present]
        infectors[k] = rng.choice(infectious[present], p=odds / odds.sum())
    epidemic.infect(caught, np.full(caught.size, moment, dtype=np.int64), infectors, location[caught], config, rng)
    return caught
