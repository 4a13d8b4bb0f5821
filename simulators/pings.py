"""What devices report: one ping per slot per device, with noise, gaps and delays.

GPS fixes scatter by metres, cell-tower fixes by hundreds of metres (both with an
`accuracy_m` radius); arriving at a venue scans its place code (exact position, no
accuracy). Pings go missing, devices are switched off overnight or for a day, and
some pings are buffered on the device and arrive late.
"""

from __future__ import annotations

import numpy as np

from simulators.city import VENUE, City
from simulators.config import MobilityConfig
from simulators.frames import CELL, GPS, NO_FAULT, VENUE_SCAN, Frame
from simulators.geo import offset_degrees

_NIGHT_FROM_HOUR, _NIGHT_UNTIL_HOUR = 23.0, 7.0
_UPLOAD_SECONDS = 60
_SIGMA_PER_RADIUS = 1 / 1.5


def _micro_degrees(base: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """base + offset rounded to 1e-6 degrees (~0.1 m), computed in place to spare temporaries."""
    base += offset
    base *= 1e6
    np.rint(base, out=base)
    base /= 1e6
    return base


def day_pings(
    city: City,
    config: MobilityConfig,
    plan: np.ndarray,
    day_start: int,
    rng: np.random.Generator,
) -> Frame:
    """The pings of one day from its final (slots, residents) location matrix (serials unset)."""
    slots, n = plan.shape
    slot_seconds = 86_400 // slots
    hour = np.arange(slots) * 24.0 / slots
    night = (hour >= _NIGHT_FROM_HOUR) | (hour < _NIGHT_UNTIL_HOUR)
    day_off = rng.random(n) < config.day_off
    night_off = rng.random(n) < config.night_off

    sent = rng.random((slots, n), dtype=np.float32) >= config.missing_ping
    sent &= ~day_off[None, :]
    sent[night] &= ~night_off[None, :]
    flat = np.flatnonzero(sent)
    del sent
    slot = flat // n
    person = (flat % n).astype(np.int32)
    place = plan.ravel()[flat]
    arrived = np.zeros_like(plan, dtype=bool)
    arrived[1:] = plan[1:] != plan[:-1]
    scan = arrived.ravel()[flat] & (city.place_kind[place] == VENUE)
    del arrived, flat

    count = person.size
    gps = city.person_gps[person]
    source = np.where(scan, VENUE_SCAN, np.where(gps, GPS, CELL)).astype(np.int8)
    median = np.where(gps, config.gps_accuracy_m, config.cell_accuracy_m)
    accuracy = np.round(median * np.exp(np.where(gps, 0.5, 0.4) * rng.standard_normal(count, dtype=np.float32)), 1)
    spread = np.where(scan, 0.0, accuracy * _SIGMA_PER_RADIUS)
    lat0 = (city.config.south + city.config.north) / 2
    dlat, dlon = offset_degrees(
        lat0,
        rng.standard_normal(count, dtype=np.float32) * spread,
        rng.standard_normal(count, dtype=np.float32) * spread,
    )
    accuracy[scan] = np.nan

    # one draw gives both the second within the slot and the upload delay
    draw = rng.integers(0, slot_seconds * _UPLOAD_SECONDS, count)
    ts = day_start + slot * slot_seconds + draw // _UPLOAD_SECONDS
    delay = draw % _UPLOAD_SECONDS
    buffered = rng.random(count, dtype=np.float32) < config.delayed_ping
    delay[buffered] += (rng.exponential(config.delayed_ping_mean_minutes * 60, int(buffered.sum()))).astype(np.int64)
    return {
        "serial": np.zeros(count, dtype=np.int64),
        "ts": ts,
        "arrival": ts + delay,
        "person": person,
        "lat": _micro_degrees(city.place_lat[place], dlat),
        "lon": _micro_degrees(city.place_lon[place], dlon),
        "accuracy_m": accuracy,
        "source": source,
        "fault": np.full(count, NO_FAULT, dtype=np.int8),
    }
