"""The presence index as callers see it: construction, batch input, statistics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from scoring.exposure import CaseWindow, ContactSpec
from scoring.presence import PresenceIndex

DAY = 86_400
T0 = 1_648_771_200
CLOSE = ContactSpec("close_contact", 10, 1800, False, 14 * DAY)
COMPANION = ContactSpec("companion", 8, 1800, False, 14 * DAY)


def test_an_index_needs_specs_with_distinct_kinds():
    with pytest.raises(ValueError, match="at least one"):
        PresenceIndex([], retention_s=DAY)
    with pytest.raises(ValueError, match="distinct"):
        PresenceIndex([CLOSE, CLOSE], retention_s=DAY)
    with pytest.raises(ValueError, match="no contact spec of kind 'bus'"):
        PresenceIndex([CLOSE], retention_s=DAY, area_kind="bus")


def test_a_batch_in_any_order_gives_what_pings_one_by_one_give():
    pings = [
        ("a", T0, 30.6, 114.3),
        ("b", T0 + 60, 30.6, 114.3),
        ("a", T0 + 900, 30.7, 114.3),
        ("b", T0 + 600, 30.8, 114.3),
        ("a", T0 + 300, 30.6, 114.3),
    ]
    one_by_one = PresenceIndex([CLOSE, COMPANION], retention_s=14 * DAY)
    one_by_one.case(CaseWindow("case-1", "a", T0, None))
    for ping in pings:
        one_by_one.ingest(*ping)
    batched = PresenceIndex([CLOSE, COMPANION], retention_s=14 * DAY)
    batched.case(CaseWindow("case-1", "a", T0, None))
    who, ts, lat, lon = zip(*reversed(pings))
    batched.ingest_batch(pa.array(who), pa.array(ts), pa.array(lat), pa.array(lon))
    assert batched.exposures() == one_by_one.exposures()
    assert [e.minutes for e in batched.exposures()] == [9.0, 9.0]


def test_records_leave_minutes_by_day_out_unless_asked():
    pings = (np.array(["a", "b", "a", "b"]), np.array([T0, T0, T0 + 600, T0 + 600]), np.full(4, 30.6), np.full(4, 114.3))
    reported = {}
    for by_day in (True, False):
        index = PresenceIndex([CLOSE, COMPANION], retention_s=14 * DAY, by_day=by_day)
        index.case(CaseWindow("case-1", "a", T0, None))
        reported[by_day] = index.ingest_batch(*pings)
        assert index.exposures() == reported[by_day]
    assert [e.minutes_by_day for e in reported[True]] == [((0, 10.0),), ((0, 10.0),)]
    assert [replace(e, minutes_by_day=()) for e in reported[True]] == reported[False]


def test_statistics_count_persons_stays_sources_and_exposures():
    index = PresenceIndex([CLOSE, COMPANION], retention_s=14 * DAY)
    index.case(CaseWindow("case-1", "a", T0, None))
    index.ingest_batch(
        np.array(["a", "b", "a", "b"]), np.array([T0, T0, T0 + 600, T0 + 600]), np.full(4, 30.6), np.full(4, 114.3)
    )
    stats = index.stats()
    assert (stats.persons, stats.stays, stats.sources, stats.exposures) == (2, 4, 2, 2)
    assert stats.stays_by_kind == {"close_contact": 2, "companion": 2}
    assert stats.nbytes > 0


def test_areas_use_the_finest_spec_unless_told_otherwise():
    ring = [[114.29, 30.59], [114.31, 30.59], [114.31, 30.61], [114.29, 30.61], [114.29, 30.59]]
    square = {"type": "Polygon", "coordinates": [ring]}
    for area_kind, gap in ((None, 600), ("companion", 1800)):
        index = PresenceIndex(
            [ContactSpec("close_contact", 10, 600, False, DAY), COMPANION], retention_s=DAY, area_kind=area_kind
        )
        index.designate("zone", "high", square, T0)
        index.ingest("a", T0, 30.6, 114.3)
        index.ingest("a", T0 + 3600, 31.6, 114.3)
        assert [e.minutes for e in index.exposures()] == [gap / 60]
