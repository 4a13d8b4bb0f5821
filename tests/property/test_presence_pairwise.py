"""The presence index finds exactly what a brute-force pairwise comparison finds,
whatever order pings, case windows, designations and watermarks arrive in."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scoring.exposure import CaseWindow, ContactSpec, Exposure
from scoring.pairwise import Designation, pairwise_exposures
from scoring.presence import PresenceIndex

T0 = 1_650_000_000
LAT0, LON0 = 30.6, 114.3
STEP = 0.0007  # about 70 m: points share close-contact cells, border them, or not
SPECS = (
    ContactSpec("close_contact", 10, 2 * 3600, True, 30 * 86400),
    ContactSpec("companion", 9, 3600, False, 30 * 86400),
)
POINTS = [(LAT0 + i * STEP, LON0 + j * STEP) for i in range(3) for j in range(3)]


@dataclass(frozen=True)
class Advance:
    watermark: int


def _square(i: int, j: int) -> dict:
    lat, lon = POINTS[i * 3 + j]
    h = STEP / 3
    ring = [[lon - h, lat - h], [lon + h, lat - h], [lon + h, lat + h], [lon - h, lat + h], [lon - h, lat - h]]
    return {"type": "Polygon", "coordinates": [ring]}


def _known_later(d: Designation) -> Designation:
    """The same designation, published an hour after it took effect."""
    return Designation(d.area_ref, d.level, d.geometry, d.valid_from, d.valid_until, d.valid_from + 3600)


minutes = st.integers(0, 36 * 60 // 10).map(lambda m: T0 + m * 600)
pings = st.lists(
    st.tuples(st.sampled_from(["p0", "p1", "p2", "p3"]), minutes, st.sampled_from([0, 1, 3, 4, 8])),
    min_size=8,
    max_size=60,
)
windows = st.builds(
    lambda ref, person, start, length, retract: [
        CaseWindow(ref, person, start, None if length is None else start + length * 600),
        *([CaseWindow(ref, person, start, None, retracted=True)] if retract else []),
    ],
    st.sampled_from(["case-a", "case-b"]),
    st.sampled_from(["p0", "p1", "p2"]),
    st.integers(0, 12 * 6).map(lambda m: T0 + m * 600),
    st.one_of(st.none(), st.integers(1, 200)),
    st.sampled_from([False, False, False, True]),
)
designations = st.lists(
    st.builds(
        lambda level, geometry, start, length: Designation(
            "area-1", level, geometry, start, None if length is None else start + length * 600
        ),
        st.sampled_from(["low", "medium", "high"]),
        st.builds(_square, st.integers(0, 2), st.integers(0, 2)),
        minutes,
        st.one_of(st.none(), st.integers(1, 60)),
    ).flatmap(lambda d: st.sampled_from([d, _known_later(d)])),
    max_size=2,
    unique_by=lambda d: d.valid_from,
)


def _arrival(rng: random.Random, ping_list, case_lists, designation_list, watermarks):
    """A random interleaving that keeps each case's windows and the watermarks in order."""
    cases = [w for ws in {ws[0].case_ref: ws for ws in case_lists}.values() for w in ws]
    items = [("ping", p) for p in ping_list] + [("case", None)] * len(cases)
    items += [("area", d) for d in designation_list] + [("advance", None)] * len(watermarks)
    rng.shuffle(items)
    in_order = {"case": iter(cases), "advance": iter(Advance(w) for w in sorted(watermarks))}
    return [(kind, in_order[kind].__next__() if kind in in_order else item) for kind, item in items], cases


def _known_at(window: CaseWindow) -> int:
    """Cases become known (a positive result) six hours into their window."""
    return window.infectious_from + 6 * 3600


def _play(arrival, rng: random.Random, by_day: bool = True) -> tuple[PresenceIndex, list[Exposure]]:
    index = PresenceIndex(SPECS, retention_s=30 * 86400, by_day=by_day)
    emitted: list[Exposure] = []
    batch: list = []

    def flush() -> None:
        if batch:
            who, ts, lat, lon = zip(*batch)
            emitted.extend(index.ingest_batch(list(who), list(ts), list(lat), list(lon)))
            batch.clear()

    for kind, item in arrival:
        if kind == "ping":
            person, ts, point = item
            batch.append((person, ts, *POINTS[point]))
            if rng.random() < 0.4:
                flush()
            continue
        flush()
        if kind == "case":
            emitted.extend(index.case(item, known_at=_known_at(item)))
        elif kind == "area":
            emitted.extend(
                index.designate(
                    item.area_ref, item.level, item.geometry, item.valid_from, item.valid_until, item.known_at
                )
            )
        else:
            emitted.extend(index.advance(item.watermark))
    flush()
    emitted.extend(index.advance(T0 + 40 * 3600))
    return index, emitted


def _folded(emitted: list[Exposure]) -> list[Exposure]:
    latest: dict[str, Exposure] = {}
    for exposure in emitted:
        latest[exposure.exposure_id] = exposure
    return sorted((e for e in latest.values() if not e.retracted), key=lambda e: (e.source, e.kind, e.person))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ping_list=pings,
    case_lists=st.lists(windows, min_size=1, max_size=2),
    designation_list=designations,
    watermarks=st.lists(minutes, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_finds_what_pairwise_comparison_finds_in_any_arrival_order(
    ping_list, case_lists, designation_list, watermarks, seed
):
    rng = random.Random(seed)
    arrival, cases = _arrival(rng, ping_list, case_lists, designation_list, watermarks)
    batching = rng.getstate()
    index, emitted = _play(arrival, rng)

    known = {w.case_ref: _known_at(w) for w in cases}
    expected = pairwise_exposures(
        [(p, ts, *POINTS[i]) for p, ts, i in ping_list], SPECS, cases, designation_list, case_known_at=known
    )
    event(f"kinds found: {sorted({e.kind for e in expected})}")
    event(f"more than one day: {any(len(e.minutes_by_day) > 1 for e in expected)}")
    assert index.exposures() == expected
    assert _folded(emitted) == expected
    # An index that keeps no minutes by day (no points rule reads them) finds all the rest alike.
    rng.setstate(batching)
    index, emitted = _play(arrival, rng, by_day=False)
    without_days = [replace(e, minutes_by_day=()) for e in expected]
    assert index.exposures() == without_days
    assert _folded(emitted) == without_days
