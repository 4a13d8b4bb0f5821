"""Retention: presence older than the look-back is deleted, so memory is bounded by
window x active population, whatever the length of the stream."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.exposure import CaseWindow, ContactSpec
from scoring.presence import PresenceIndex

DAY = 86_400
HOUR = 3600
T0 = 1_648_771_200
HOME = (30.6, 114.3)


def spec(kind: str, lookback_days: int, resolution: int = 10) -> ContactSpec:
    return ContactSpec(kind, resolution, HOUR, False, lookback_days * DAY)


def advance(index: PresenceIndex, watermark: int) -> list:
    found = index.advance(watermark)
    index.expire(watermark)
    return found


def ping_day(index: PresenceIndex, persons: int, day: int) -> None:
    """Everyone pings hourly for a day at spread-out places."""
    hours = np.arange(24)
    who = np.repeat([f"p{i}" for i in range(persons)], 24)
    ts = T0 + day * DAY + np.tile(hours, persons) * HOUR
    lat = HOME[0] + np.repeat(np.arange(persons), 24) * 0.01
    index.ingest_batch(who, ts, lat, np.full(len(who), HOME[1]))


def test_presence_older_than_the_look_back_is_deleted():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    ping_day(index, 5, 0)
    advance(index, T0 + DAY)
    assert index.stats().stays == 5 * 24
    advance(index, T0 + 3 * DAY)
    assert index.stats().stays == 0
    assert index.stats().nbytes == 0


def test_presence_inside_the_look_back_is_kept_and_found_by_a_late_case():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    for person, away in (("patient", 31.0), ("neighbour", 32.0)):
        index.ingest(person, T0, *HOME)
        index.ingest(person, T0 + HOUR, away, 115.0)
    advance(index, T0 + 2 * DAY - 1)
    found = index.case(CaseWindow("case-1", "patient", T0 - DAY, None))
    assert [(e.person, e.minutes) for e in found] == [("neighbour", 60.0)]


def test_a_late_case_cannot_find_presence_already_deleted():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    for person in ("patient", "neighbour"):
        index.ingest(person, T0, *HOME)
        index.ingest(person, T0 + HOUR, 31.0, 115.0)
    advance(index, T0 + 3 * DAY)
    assert index.case(CaseWindow("case-1", "patient", T0 - DAY, None)) == []


def test_each_kind_keeps_presence_for_its_own_look_back_within_the_retention():
    index = PresenceIndex([spec("close_contact", 3), spec("companion", 1, resolution=8)], retention_s=2 * DAY)
    ping_day(index, 4, 0)
    advance(index, T0 + 2 * DAY + 1)
    assert index.stats().stays_by_kind == {"close_contact": 4 * 24, "companion": 0}
    advance(index, T0 + 3 * DAY + HOUR)
    assert index.stats().stays == 0


def test_memory_stays_flat_over_many_days_of_the_same_population():
    index = PresenceIndex([spec("close_contact", 2), spec("companion", 2, resolution=8)], retention_s=2 * DAY)
    held = []
    for day in range(8):
        ping_day(index, 30, day)
        advance(index, T0 + (day + 1) * DAY)
        held.append(index.stats())
    bound = 2 * 30 * (2 * 24 + 1)
    assert all(stats.stays <= bound for stats in held)
    assert held[-1].nbytes <= held[2].nbytes
    assert held[-1].persons == 30


def test_a_case_closed_before_the_cutoff_is_forgotten_without_retracting_its_exposures():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    index.case(CaseWindow("case-1", "patient", T0, T0 + DAY))
    for person, away in (("patient", 31.0), ("neighbour", 32.0)):
        index.ingest(person, T0, *HOME)
        index.ingest(person, T0 + HOUR, away, 115.0)
    assert [e.minutes for e in index.exposures()] == [60.0]
    assert index.advance(T0 + 3 * DAY + 1) == []
    assert index.stats().sources == 1
    index.expire(T0 + 3 * DAY + 1)
    assert index.stats().sources == 0
    assert index.exposures() == []


def test_pings_older_than_the_cutoff_are_not_kept():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    advance(index, T0 + 10 * DAY)
    index.ingest("late", T0, *HOME)
    index.ingest("late", T0 + HOUR, *HOME)
    assert index.stats().stays == 0


@pytest.mark.parametrize("lookback_days", [1, 3])
def test_retention_caps_a_longer_look_back(lookback_days):
    index = PresenceIndex([spec("close_contact", lookback_days)], retention_s=DAY)
    ping_day(index, 3, 0)
    advance(index, T0 + 2 * DAY + HOUR)
    assert index.stats().stays == 0


def test_designations_that_ended_before_the_cutoff_are_forgotten():
    index = PresenceIndex([spec("close_contact", 2)], retention_s=2 * DAY)
    ring = [[114.29, 30.59], [114.31, 30.59], [114.31, 30.61], [114.29, 30.59]]
    area = {"type": "Polygon", "coordinates": [ring]}
    index.designate("old", "high", area, T0, T0 + DAY)
    index.designate("current", "high", area, T0)
    assert index.stats().designations == 2
    advance(index, T0 + 3 * DAY + 1)
    assert index.stats().designations == 1
    assert index.stats().sources == 1
