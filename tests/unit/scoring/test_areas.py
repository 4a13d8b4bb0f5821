"""Area exposure: presence in the cells of a designated area while it held."""

from __future__ import annotations

import json

import h3.api.basic_int as h3i
import numpy as np
import pytest

from scoring.areas import AreaTimeline, AreaTooLarge, area_cells, estimated_cells
from scoring.events import AreaRisk, decode_event
from scoring.exposure import ContactSpec
from scoring.presence import PresenceIndex

DAY = 86_400
T0 = 1_648_771_200
MIN = 60
SPECS = [
    ContactSpec("close_contact", 10, 30 * MIN, True, 14 * DAY),
    ContactSpec("companion", 8, 30 * MIN, False, 14 * DAY),
]
INSIDE = (30.600, 114.300)
OUTSIDE = (30.650, 114.350)


def square(lat: float, lon: float, half: float = 0.002) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


AREA = square(*INSIDE)


@pytest.fixture(params=[True, False], ids=["by-day", "crowds"])
def index(request) -> PresenceIndex:
    # Without minutes by day (no points rule reads them), an area's persons are tallied as a crowd.
    return PresenceIndex(SPECS, retention_s=14 * DAY, by_day=request.param)


def visit(index: PresenceIndex, person: str, where: tuple[float, float], start_min: int, minutes: int):
    """Ping every 10 minutes at `where` from start, then once far away."""
    out = []
    for m in range(start_min, start_min + minutes, 10):
        out += index.ingest(person, T0 + m * MIN, *where)
    return out + index.ingest(person, T0 + (start_min + minutes) * MIN, *OUTSIDE)


def test_a_polygon_is_filled_with_the_cells_it_overlaps():
    cells = area_cells(AREA, 10)
    assert h3i.latlng_to_cell(*INSIDE, 10) in cells.tolist()
    assert h3i.latlng_to_cell(*OUTSIDE, 10) not in cells.tolist()
    assert len(cells) > 10


def test_a_tiny_polygon_still_has_the_cell_it_lies_in():
    assert area_cells(square(*INSIDE, half=0.00001), 8).tolist() == [h3i.latlng_to_cell(*INSIDE, 8)]


def test_a_multipolygon_is_filled_with_the_cells_of_all_its_parts():
    other = square(*OUTSIDE)
    both = {"type": "MultiPolygon", "coordinates": [AREA["coordinates"], other["coordinates"]]}
    parts = set(area_cells(AREA, 10).tolist()) | set(area_cells(other, 10).tolist())
    assert set(area_cells(both, 10).tolist()) == parts


def test_the_event_contract_geometry_is_accepted(index):
    event = decode_event(
        json.dumps({"event_id": "a1", "type": "area_risk", "ts": "2022-04-01T00:00:00Z", "area": "Market",
                    "level": "high", "geometry": AREA})
    )
    assert isinstance(event, AreaRisk)
    visit(index, "shopper", INSIDE, 60, 30)
    found = index.designate("area-ref", event.level, event.geometry, T0)
    assert [(e.person, e.minutes) for e in found] == [("shopper", 30.0)]


def test_presence_while_designated_gives_an_area_exposure_with_its_level(index):
    index.designate("area-ref", "high", AREA, T0)
    found = visit(index, "shopper", INSIDE, 60, 30)
    assert [e.minutes for e in found] == [10.0, 20.0, 30.0]
    assert [(e.person, e.kind, e.level, e.minutes) for e in index.exposures()] == [("shopper", "area", "high", 30.0)]


def test_presence_elsewhere_gives_nothing(index):
    index.designate("area-ref", "high", AREA, T0)
    assert visit(index, "passer_by", OUTSIDE, 60, 30) == []


def test_a_late_designation_finds_earlier_presence_backward(index):
    visit(index, "shopper", INSIDE, 60, 30)
    index.advance(T0 + DAY)
    found = index.designate("area-ref", "medium", AREA, T0 + 70 * MIN)
    assert [(e.level, e.minutes, e.first_at) for e in found] == [("medium", 20.0, T0 + 70 * MIN)]


def test_presence_before_the_designation_does_not_count(index):
    visit(index, "shopper", INSIDE, 60, 30)
    assert index.designate("area-ref", "high", AREA, T0 + 2 * 3600) == []


def test_a_later_low_designation_ends_the_exposure(index):
    index.designate("area-ref", "high", AREA, T0)
    index.designate("area-ref", "low", AREA, T0 + 80 * MIN)
    visit(index, "shopper", INSIDE, 60, 60)
    assert [(e.minutes, e.last_at) for e in index.exposures()] == [(20.0, T0 + 80 * MIN)]


def test_an_end_arriving_after_the_presence_trims_the_exposure(index):
    index.designate("area-ref", "high", AREA, T0)
    visit(index, "shopper", INSIDE, 60, 60)
    trimmed = index.designate("area-ref", "low", AREA, T0 + 80 * MIN)
    assert [(e.minutes, e.retracted) for e in trimmed] == [(20.0, False)]


def test_a_designation_with_an_end_counts_only_until_then(index):
    index.designate("area-ref", "high", AREA, T0, T0 + 90 * MIN)
    visit(index, "shopper", INSIDE, 60, 60)
    assert [e.minutes for e in index.exposures()] == [30.0]


def test_each_period_of_an_area_is_its_own_source(index):
    index.designate("area-ref", "medium", AREA, T0)
    index.designate("area-ref", "high", AREA, T0 + 80 * MIN)
    visit(index, "shopper", INSIDE, 60, 60)
    assert sorted((e.level, e.minutes) for e in index.exposures()) == [("high", 40.0), ("medium", 20.0)]
    assert len({e.source for e in index.exposures()}) == 2


@pytest.mark.parametrize("by_day", [True, False], ids=["by-day", "crowds"])
def test_an_index_looks_only_for_the_designation_levels_it_is_given(by_day):
    index = PresenceIndex(SPECS, retention_s=14 * DAY, area_levels=("high",), by_day=by_day)
    index.designate("area-ref", "medium", AREA, T0)
    index.designate("area-ref", "high", AREA, T0 + 80 * MIN)
    visit(index, "shopper", INSIDE, 60, 60)
    assert [(e.level, e.minutes) for e in index.exposures()] == [("high", 40.0)]
    # A period corrected to a level it does not look for withdraws what it found.
    corrected = index.designate("area-ref", "medium", AREA, T0 + 80 * MIN)
    assert [(e.level, e.retracted) for e in corrected] == [("high", True)]
    assert index.exposures() == []


def test_area_exposures_carry_neither_the_area_name_nor_coordinates(index):
    index.designate("Wuhan Huanan Seafood Market", "high", AREA, T0)
    visit(index, "shopper", INSIDE, 60, 30)
    text = repr(index.exposures())
    assert "Huanan" not in text and "30.6" not in text and "114.3" not in text


def test_designations_arriving_in_any_order_give_the_same_periods():
    early = AreaTimeline(10)
    early.designate("a", "high", AREA, T0, None)
    early.designate("a", "low", AREA, T0 + 3600, None)
    late = AreaTimeline(10)
    late.designate("a", "low", AREA, T0 + 3600, None)
    late.designate("a", "high", AREA, T0, None)
    assert [(p.source, p.level, p.start, p.end) for p in early.periods("a")] == [
        (p.source, p.level, p.start, p.end) for p in late.periods("a")
    ]
    assert early.periods("a")[0].end == T0 + 3600


def test_an_unknown_level_or_an_empty_period_is_refused():
    timeline = AreaTimeline(10)
    with pytest.raises(ValueError, match="level"):
        timeline.designate("a", "extreme", AREA, T0, None)
    with pytest.raises(ValueError, match="valid_until"):
        timeline.designate("a", "high", AREA, T0, T0)


def test_area_exposures_are_known_from_the_designation_or_their_last_presence(index):
    visit(index, "early", INSIDE, 60, 30)
    found = index.designate("area-ref", "high", AREA, T0, known_at=T0 + DAY)
    assert [e.known_at for e in found] == [T0 + DAY]
    later = visit(index, "later", INSIDE, 2 * 24 * 60, 20)
    assert later[-1].known_at == T0 + 2 * DAY + 20 * MIN


def test_an_area_too_large_to_fill_is_refused_from_its_outline_before_any_cell_is_made():
    ten_degrees = {"type": "Polygon", "coordinates": [[[100, 20], [110, 20], [110, 30], [100, 30], [100, 20]]]}
    with pytest.raises(AreaTooLarge, match=r"about [\d,]+ cells at H3 resolution 10, at most 2,000,000"):
        area_cells(ten_degrees, 10)
    timeline = AreaTimeline(10)
    with pytest.raises(AreaTooLarge):
        timeline.designate("big", "high", ten_degrees, T0, None)
    assert len(timeline) == 0 and timeline.cells_filled == 0


@pytest.mark.parametrize(
    "geometry",
    [
        square(*INSIDE, half=0.05),
        {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.3, 30.3], [114.3005, 30.3], [114.0005, 30.0], [114.0, 30.0]]]},
        {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.1], [114.1, 30.0], [114.0, 30.1], [114.0, 30.0]]]},
        {"type": "Polygon", "coordinates": [[[179.9, 60.0], [-179.9, 60.0], [-179.9, 60.1], [179.9, 60.1], [179.9, 60.0]]]},
        {"type": "Polygon", "coordinates": [[[114.0 + i * 1e-3, 30.0 + (i % 2) * 0.02] for i in range(200)]
                                            + [[114.2, 29.9], [114.0, 29.9], [114.0, 30.0]]]},
    ],
    ids=["square", "thin diagonal strip", "self-crossing bow tie", "across the antimeridian", "comb"],
)
def test_the_cell_estimate_is_not_below_what_filling_makes(geometry):
    made = len(area_cells(geometry, 10))
    assert made <= estimated_cells(geometry, 10) <= 10 * made + 100


def test_a_record_waiting_when_its_area_is_forgotten_is_still_delivered_when_due():
    index = PresenceIndex(SPECS, retention_s=14 * DAY, by_day=False)
    assert index.hold_growth(True)
    index.designate("area-ref", "high", AREA, T0, T0 + 120 * MIN)
    delivered = []
    for tick in range(1, 5):  # a resident inside, pinging every five minutes, ticks of fifteen
        at = T0 + tick * 15 * MIN
        pings = [T0 + m * MIN for m in range((tick - 1) * 15, tick * 15, 5)]
        delivered += index.ingest_batch(["resident"] * 3, np.array(pings), *np.array([INSIDE] * 3).T, tick=at)
        delivered += index.advance(at, tick=True) + index.refresh_growth(at)
    assert [e.last_at for e in delivered] == [T0 + 10 * MIN]  # the run's start; its growth waits
    index.expire(T0 + 20 * DAY)  # the designation ended long ago: presence forgets it
    assert index.exposures() == []
    assert [e.last_at for e in index.refresh_growth(T0 + 20 * DAY)] == [T0 + 55 * MIN]
