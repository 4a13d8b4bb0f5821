"""Presence split by region: a person-keyed `StayPartition` sends stays to region indexes
that count co-presence only in their own cells; the scoring stage sums their partial
exposures (`ExposureMerge`). Whatever the batching, that is what one index for the whole
city finds."""

from __future__ import annotations

from dataclasses import replace

import h3.api.basic_int as h3i
import numpy as np
import pytest

from scoring.cells import disc, parent
from scoring.exposure import CaseWindow, ContactSpec, Exposure
from scoring.presence import PresenceIndex
from scoring.regions import STEPS, ExposureMerge, RegionMap, StayPartition, region_resolution

CLOSE = ContactSpec("close_contact", 10, 900, False, 14 * 86400)
COMPANION = ContactSpec("companion", 8, 1800, False, 14 * 86400)
RETENTION = 30 * 86400


def spec_sets() -> list[tuple[ContactSpec, ...]]:
    return [(CLOSE, COMPANION), (replace(CLOSE, include_neighbours=True), COMPANION)]


def test_regions_are_coarser_than_every_contact_cell_by_a_margin_for_neighbours():
    assert region_resolution([CLOSE, COMPANION]) == 8 - STEPS
    assert region_resolution([replace(CLOSE, include_neighbours=True), COMPANION]) == 8 - STEPS - 1
    with pytest.raises(ValueError):
        region_resolution([])


def test_a_cells_region_is_its_ancestor_and_a_stay_by_a_border_reaches_each_region_its_disc_touches():
    regions = RegionMap(6)
    inner = h3i.latlng_to_cell(30.6, 114.3, 6)
    children = np.array(sorted(h3i.cell_to_children(inner, 10)), dtype=np.int64)
    assert set(regions.region_of(children).tolist()) == {int(parent(np.array([inner]), 6)[0])}
    rows, reached = regions.routes(children, neighbours=False)
    assert rows.tolist() == list(range(len(children)))
    rows, reached = regions.routes(children, neighbours=True)
    for i, cell in enumerate(children.tolist()):
        expected = set(regions.region_of(np.array(disc(cell))).tolist())
        assert set(reached[rows == i].tolist()) == expected
    assert any(len(set(reached[rows == i].tolist())) > 1 for i in range(len(children)))


def border_positions(rng: np.random.Generator, count: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions within ~1 km of the border of two regions (and some further in)."""
    a = h3i.latlng_to_cell(30.6, 114.3, resolution)
    b = next(n for n in h3i.grid_disk(a, 1) if n != a)
    (lat_a, lon_a), (lat_b, lon_b) = h3i.cell_to_latlng(a), h3i.cell_to_latlng(b)
    mid_lat, mid_lon = (lat_a + lat_b) / 2, (lon_a + lon_b) / 2
    places_lat = mid_lat + rng.normal(0, 0.006, 25)
    places_lon = mid_lon + rng.normal(0, 0.006, 25)
    which = rng.integers(0, 25, count)
    return places_lat[which], places_lon[which]


def run(specs: tuple[ContactSpec, ...], seed: int):
    """The same pings, case and designation fed whole and split; (whole, merged, parts per region)."""
    rng = np.random.default_rng(seed)
    regions = RegionMap(region_resolution(specs))
    whole = PresenceIndex(specs, RETENTION)
    stage = StayPartition(specs)
    parts: dict[int, PresenceIndex] = {}
    merge = ExposureMerge()
    found: dict[str, Exposure] = {}
    merged: dict[str, Exposure] = {}

    def keep(into: dict[str, Exposure], exposures: list[Exposure]) -> None:
        for exposure in exposures:
            if exposure.retracted:
                into.pop(exposure.exposure_id, None)
            else:
                into[exposure.exposure_id] = exposure

    def region(r: int) -> PresenceIndex:
        if r not in parts:
            parts[r] = PresenceIndex(specs, RETENTION, owns=regions.owner([r]))
            for step in broadcast:
                step(parts[r])
        return parts[r]

    broadcast: list = []

    def tell(action) -> None:
        """A case or designation reaches the whole index and every region partition."""
        broadcast.append(action)
        keep(found, action(whole))
        keep(merged, merge.apply((r, e) for r, index in sorted(parts.items()) for e in action(index)))

    def stays(changes) -> None:
        partials = []
        for change in changes:
            for r in sorted(change.regions(regions)):
                routed = change.for_region(regions, r)
                partials += [(r, e) for e in region(r).apply_stays(change.spec.kind, routed.added, routed.withdrawn)]
        keep(merged, merge.apply(partials))

    persons = np.array([f"p{i}" for i in range(12)], dtype=object)
    square = {"type": "Polygon", "coordinates": [[[114.2, 30.5], [114.5, 30.5], [114.5, 30.8], [114.2, 30.8],
                                                    [114.2, 30.5]]]}
    for batch in range(10):
        if batch == 3:
            tell(lambda index: index.case(CaseWindow("case-1", "p0", 0, 40_000), known_at=6_000))
        if batch == 5:
            tell(lambda index: index.designate("area-1", "high", square, 3_000, 9_000))
        # Batches overlap in time: some pings are late and split stays already closed.
        who = persons[rng.integers(0, 12, 60)]
        ts = rng.integers(batch * 8, batch * 8 + 12, 60) * 300
        lat, lon = border_positions(rng, 60, regions.resolution)
        keep(found, whole.ingest_batch(who, ts, lat, lon))
        stays(stage.ingest(who, ts, lat, lon))
        keep(found, whole.advance(ts.max()))
        stays(stage.advance(int(ts.max())))
    keep(found, whole.advance(10**6))
    stays(stage.advance(10**6))
    return found, merged, parts


@pytest.mark.parametrize("specs", spec_sets(), ids=["same-cell", "neighbours"])
@pytest.mark.parametrize("seed", [1, 2])
def test_region_partitions_summed_find_what_one_index_for_the_whole_city_finds(specs, seed):
    whole, merged, parts = run(specs, seed)
    assert len(parts) >= 2
    assert {e.kind for e in whole.values()} >= {"close_contact", "companion", "area"}
    split = [i for i, e in whole.items() if sum(i in {x.exposure_id for x in p.exposures()} for p in parts.values()) > 1]
    assert split, "no pair was counted in two regions: the test would not show the sum"
    assert merged == whole
