"""The city: homes, workplaces, schools, venues and hospitals, and who belongs where.

All places share one index space (`place_*` arrays) so a person's location in a
time slot is a single integer; co-presence is two people with the same integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.config import CityConfig
from simulators.districts import District, build_districts, points_in
from simulators.geo import planar_metres
from simulators.rng import generator

HOME, WORK, SCHOOL, VENUE, HOSPITAL = 0, 1, 2, 3, 4
PLACE_KINDS: tuple[str, ...] = ("home", "work", "school", "venue", "hospital")
CHILD, WORKER, AT_HOME = 0, 1, 2
ROLES: tuple[str, ...] = ("child", "worker", "at_home")

_HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5])
_HOUSEHOLD_WEIGHTS = np.array([0.17, 0.30, 0.28, 0.15, 0.10])
_ROLE_WEIGHTS = np.array([0.18, 0.55, 0.27])
_CHUNK = 8192
_CANDIDATES = 32


@dataclass(frozen=True)
class City:
    """Places (one index space) and residents (one index space), as numpy arrays."""

    config: CityConfig
    districts: tuple[District, ...]
    place_kind: np.ndarray
    place_lat: np.ndarray
    place_lon: np.ndarray
    place_district: np.ndarray
    hospital_places: np.ndarray
    hospital_names: tuple[str, ...]
    person_home: np.ndarray
    person_role: np.ndarray
    person_day_place: np.ndarray
    person_venues: np.ndarray
    person_hospital: np.ndarray
    person_gps: np.ndarray

    @property
    def residents(self) -> int:
        """How many people live here."""
        return int(self.person_home.size)

    @property
    def person_district(self) -> np.ndarray:
        """The district of each resident's home."""
        return self.place_district[self.person_home]

    def place_counts(self) -> dict[str, int]:
        """How many places of each kind there are."""
        counts = np.bincount(self.place_kind, minlength=len(PLACE_KINDS))
        return {kind: int(n) for kind, n in zip(PLACE_KINDS, counts)}


def pseudonym_width(residents: int) -> int:
    """Digits in a pseudonym, so they sort in resident order (at least six)."""
    return max(6, len(str(residents - 1)))


def pseudonyms(residents: int) -> list[str]:
    """The pseudonym of every resident: `p000123` style, never a name."""
    width = pseudonym_width(residents)
    return [f"p{i:0{width}d}" for i in range(residents)]


def _district_weights(
    districts: tuple[District, ...], config: CityConfig, spread: float, rng: np.random.Generator
) -> np.ndarray:
    """Density falling off from the centre of the box (in cells), with district-level noise."""
    centres = np.array([np.mean(d.corners, axis=0) for d in districts])
    mid = np.array([(config.west + config.east) / 2, (config.south + config.north) / 2])
    cell = np.array(
        [(config.east - config.west) / config.district_cols, (config.north - config.south) / config.district_rows]
    )
    distance = np.hypot(*((centres - mid) / cell).T)
    weights = np.exp(-(distance**2) / (2 * spread**2)) * rng.lognormal(0.0, 0.3, len(districts))
    return weights / weights.sum()


def _place(
    count: int, weights: np.ndarray, corners: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    district = rng.choice(len(weights), size=count, p=weights)
    lat, lon = points_in(corners[district], rng.random(count), rng.random(count))
    return np.round(lat, 6), np.round(lon, 6), district.astype(np.int16)


def _households(residents: int, rng: np.random.Generator) -> np.ndarray:
    """The household index of every resident, households filled in order."""
    sizes = rng.choice(_HOUSEHOLD_SIZES, size=residents, p=_HOUSEHOLD_WEIGHTS)
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, residents)) + 1
    return np.repeat(np.arange(count), sizes[:count])[:residents]


def _nearest(from_xy: np.ndarray, to_xy: np.ndarray) -> np.ndarray:
    result = np.empty(len(from_xy), dtype=np.int64)
    for start in range(0, len(from_xy), _CHUNK):
        block = from_xy[start : start + _CHUNK]
        d2 = ((block[:, None, :] - to_xy[None, :, :]) ** 2).sum(axis=2)
        result[start : start + _CHUNK] = d2.argmin(axis=1)
    return result


def _favourites(from_xy: np.ndarray, to_xy: np.ndarray, k: int, scale_m: float, rng: np.random.Generator) -> np.ndarray:
    """k venues per person, nearer ones likelier: Gumbel top-k on -distance/scale over a
    random candidate sample (a venue drawn twice is simply a stronger favourite)."""
    candidates = rng.integers(len(to_xy), size=(len(from_xy), max(4 * k, _CANDIDATES)))
    distance = np.sqrt(((from_xy[:, None, :] - to_xy[candidates]) ** 2).sum(axis=2))
    score = -distance / scale_m + rng.gumbel(size=distance.shape)
    best = np.argpartition(-score, k - 1, axis=1)[:, :k]
    return np.take_along_axis(candidates, best, axis=1)


def build_city(config: CityConfig, residents: int, gps_share: float, seed: int) -> City:
    """Lay out a city for `residents` people, deterministically from `seed`."""
    rng = generator(seed, "city")
    districts = build_districts(config, rng)
    corners = np.array([d.corners for d in districts])
    living = _district_weights(districts, config, 1.6, rng)
    business = _district_weights(districts, config, 1.0, rng)

    household = _households(residents, rng)
    counts = {
        HOME: int(household[-1]) + 1,
        WORK: max(1, math.ceil(residents / config.residents_per_workplace)),
        SCHOOL: max(1, math.ceil(residents / config.residents_per_school)),
        VENUE: max(config.favourite_venues, math.ceil(residents / config.residents_per_venue)),
        HOSPITAL: max(2, math.ceil(residents / config.residents_per_hospital)),
    }
    weights = {HOME: living, WORK: business, SCHOOL: living, VENUE: (living + business) / 2, HOSPITAL: living}
    kinds, lats, lons, dists = [], [], [], []
    for kind in (HOME, WORK, SCHOOL, VENUE, HOSPITAL):
        lat, lon, district = _place(counts[kind], weights[kind], corners, rng)
        kinds.append(np.full(counts[kind], kind, dtype=np.int8))
        lats.append(lat)
        lons.append(lon)
        dists.append(district)
    place_kind = np.concatenate(kinds)
    place_lat, place_lon = np.concatenate(lats), np.concatenate(lons)
    first = {kind: int(np.argmax(place_kind == kind)) for kind in counts}
    lat0 = (config.south + config.north) / 2
    x, y = planar_metres(lat0, place_lat, place_lon)
    xy = np.stack([x, y], axis=1)

    def of_kind(kind: int) -> np.ndarray:
        return np.arange(first[kind], first[kind] + counts[kind])

    person_home = household + first[HOME]
    home_xy = xy[person_home]
    role = rng.choice(len(ROLES), size=residents, p=_ROLE_WEIGHTS).astype(np.int8)
    day_place = np.full(residents, -1, dtype=np.int64)
    workers = np.nonzero(role == WORKER)[0]
    size_weights = rng.lognormal(0.0, 1.0, counts[WORK])
    day_place[workers] = first[WORK] + rng.choice(counts[WORK], size=workers.size, p=size_weights / size_weights.sum())
    children = np.nonzero(role == CHILD)[0]
    day_place[children] = of_kind(SCHOOL)[_nearest(home_xy[children], xy[of_kind(SCHOOL)])]
    venues = of_kind(VENUE)[_favourites(home_xy, xy[of_kind(VENUE)], config.favourite_venues, 2_000.0, rng)]
    hospitals = of_kind(HOSPITAL)
    person_hospital = hospitals[_nearest(home_xy, xy[hospitals])]
    names = tuple(f"{config.name} No. {k + 1} Hospital" for k in range(counts[HOSPITAL]))
    return City(
        config=config,
        districts=districts,
        place_kind=place_kind,
        place_lat=place_lat,
        place_lon=place_lon,
        place_district=np.concatenate(dists),
        hospital_places=hospitals,
        hospital_names=names,
        person_home=person_home.astype(np.int32),
        person_role=role,
        person_day_place=day_place.astype(np.int32),
        person_venues=venues.astype(np.int32),
        person_hospital=person_hospital.astype(np.int32),
        person_gps=rng.random(residents) < gps_share,
    )
