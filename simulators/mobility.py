"""Daily schedules: where each resident is in each time slot of a day.

A day is a (slots, residents) matrix of place indices, built from a handful of
vectorised "occupy place P from slot A to slot B" layers over the home baseline:
work or school on weekdays, an evening venue, a daytime venue for those at home,
and longer venue outings at weekends.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from simulators.city import AT_HOME, WORKER, City
from simulators.config import MobilityConfig


def _slot(hours: np.ndarray, slots_per_day: int) -> np.ndarray:
    return np.clip(np.rint(hours * slots_per_day / 24.0), 0, slots_per_day).astype(np.int32)


def _occupy(plan: np.ndarray, start: np.ndarray, end: np.ndarray, place: np.ndarray, who: np.ndarray) -> None:
    """Put `who` at `place` for slots [start, end) (per-person arrays)."""
    slots = np.arange(plan.shape[0], dtype=np.int32)[:, None]
    inside = who[None, :] & (slots >= start[None, :]) & (slots < end[None, :])
    np.copyto(plan, np.broadcast_to(place[None, :], plan.shape), where=inside)


def _outing(
    city: City,
    rng: np.random.Generator,
    who: np.ndarray,
    start_h: tuple[float, float],
    length_h: tuple[float, float],
    slots: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = city.residents
    start = rng.uniform(*start_h, n)
    length = rng.uniform(*length_h, n)
    pick = rng.integers(city.person_venues.shape[1], size=n)
    venue = city.person_venues[np.arange(n), pick]
    return _slot(start, slots), _slot(start + length, slots), venue


def day_plan(city: City, config: MobilityConfig, day: date, rng: np.random.Generator) -> np.ndarray:
    """Where everyone is in each slot of local day `day`: an int32 (slots, residents) matrix."""
    slots = 1440 // config.ping_interval_minutes
    n = city.residents
    plan = np.broadcast_to(city.person_home[None, :], (slots, n)).copy()
    role = city.person_role
    weekday = day.weekday() < 5
    saturday = day.weekday() == 5

    if weekday:
        workers = role == WORKER
        start = np.where(workers, rng.normal(8.5, 0.6, n), rng.normal(7.8, 0.25, n))
        length = np.where(workers, rng.normal(9.0, 0.8, n), rng.normal(8.5, 0.4, n))
        start, length = np.clip(start, 6.0, 11.0), np.clip(length, 4.0, 12.0)
        _occupy(plan, _slot(start, slots), _slot(start + length, slots), city.person_day_place, role != AT_HOME)
        evening = (role != AT_HOME) & (rng.random(n) < config.weekday_evening_venue)
        _occupy(plan, *_outing(city, rng, evening, (18.5, 21.0), (1.0, 2.5), slots), evening)
        daytime = (role == AT_HOME) & (rng.random(n) < config.retired_daytime_venue)
        _occupy(plan, *_outing(city, rng, daytime, (8.0, 16.0), (1.0, 3.0), slots), daytime)
        return plan

    if saturday:
        shift = (role == WORKER) & (rng.random(n) < config.saturday_work)
        start = np.clip(rng.normal(9.0, 0.5, n), 7.0, 11.0)
        _occupy(plan, _slot(start, slots), _slot(start + 6.0, slots), city.person_day_place, shift)
    outing = rng.random(n) < config.weekend_venue
    _occupy(plan, *_outing(city, rng, outing, (10.0, 19.0), (1.0, 4.0), slots), outing)
    return plan


def local_day(start: date, index: int) -> date:
    """The calendar date of simulated day `index`."""
    return start + timedelta(days=index)
