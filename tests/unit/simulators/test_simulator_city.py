"""The city: districts tile the box, places lie inside them, residents belong somewhere."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.city import CHILD, HOSPITAL, SCHOOL, VENUE, WORK, WORKER, build_city, pseudonyms
from simulators.config import CityConfig
from simulators.districts import is_convex


@pytest.fixture(scope="module")
def city():
    return build_city(CityConfig(), 3_000, 0.65, seed=11)


def _inside(corners: tuple, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    inside = np.ones(lat.size, dtype=bool)
    for k in range(len(corners)):
        (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % len(corners)]
        inside &= (x1 - x0) * (lat - y0) - (y1 - y0) * (lon - x0) >= -1e-9
    return inside


def test_districts_are_named_convex_counter_clockwise_polygons(city) -> None:
    assert len(city.districts) == 16
    assert len({d.id for d in city.districts}) == len({d.name for d in city.districts}) == 16
    for district in city.districts:
        assert is_convex(district.corners)
        ring = district.ring()
        assert ring[0] == ring[-1] and len(ring) == 5
        area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
        assert area2 > 0


def test_every_place_lies_in_its_district(city) -> None:
    for number, district in enumerate(city.districts):
        mine = city.place_district == number
        assert _inside(district.corners, city.place_lat[mine], city.place_lon[mine]).all()


def test_districts_cover_the_box_without_gaps() -> None:
    config = CityConfig(district_rows=3, district_cols=5)
    city = build_city(config, 200, 0.5, seed=1)
    rng = np.random.default_rng(0)
    lat = rng.uniform(config.south, config.north, 2_000)
    lon = rng.uniform(config.west, config.east, 2_000)
    covered = sum(_inside(d.corners, lat, lon).astype(int) for d in city.districts)
    assert (covered >= 1).all()


def test_workers_work_children_go_to_school_and_everyone_has_favourite_venues(city) -> None:
    kind_of = city.place_kind
    assert (kind_of[city.person_day_place[city.person_role == WORKER]] == WORK).all()
    assert (kind_of[city.person_day_place[city.person_role == CHILD]] == SCHOOL).all()
    assert (kind_of[city.person_venues] == VENUE).all()
    assert (kind_of[city.person_hospital] == HOSPITAL).all()
    assert len(city.hospital_names) >= 2


def test_households_share_homes(city) -> None:
    sizes = np.bincount(city.person_home - city.person_home.min())
    assert sizes.max() > 1 and sizes.mean() > 2


def test_pseudonyms_are_fixed_width_and_sort_in_resident_order() -> None:
    names = pseudonyms(1_234_567)
    assert names[0] == "p0000000" and names[-1] == "p1234566"
    assert names == sorted(names)
