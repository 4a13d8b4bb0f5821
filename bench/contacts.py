"""Contact detection on a synthetic city day: the presence index against brute force.

A day of N persons (100,000 by default) pinging every 15 minutes: home at night,
a workplace by day, an errand in the evening, positions jittered by ~10 m. The
pings are ingested in event-time batches; then 100 persons become cases with a
window open since midnight and their contacts are found backward. A second run
knows the cases from the start and finds the same contacts forward, while pinging.

Figures: ingest pings/s, backward and forward detection time and exposures/s, the
index's memory (held arrays and peak RSS), and the ratio against the brute-force
pairwise comparison (`scoring.pairwise`) measured in the same run on a subsample
(both must find the same exposures there), extrapolated to the full city as
brute force scales (cases x persons). A last part runs several days with a
one-day retention and shows the held stays stop growing.

    .venv/bin/python -m bench.contacts            # 100,000 persons
    .venv/bin/python -m bench.contacts --quick    # 10,000 persons, seconds
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass

import numpy as np

from scoring.exposure import CaseWindow, ContactSpec, Exposure
from scoring.pairwise import pairwise_exposures
from scoring.presence import PresenceIndex

T0 = 1_648_771_200  # 2022-04-01T00:00:00Z
DAY = 86_400
PING_EVERY = 900
SPECS = (
    ContactSpec("close_contact", 10, 2 * PING_EVERY, True, 14 * DAY),
    ContactSpec("companion", 8, 2 * PING_EVERY, False, 14 * DAY),
)
CENTRE = (30.59, 114.30)
SPAN_DEG = 0.25  # about 28 km across


@dataclass(frozen=True)
class City:
    persons: np.ndarray
    homes: np.ndarray
    works: np.ndarray
    shops: np.ndarray


def make_city(persons: int, rng: np.random.Generator) -> City:
    """Places: about 2.5 persons per home, 20 per workplace, 50 per shop."""

    def places(count: int) -> np.ndarray:
        return np.column_stack(
            [
                CENTRE[0] + rng.uniform(-SPAN_DEG / 2, SPAN_DEG / 2, count),
                CENTRE[1] + rng.uniform(-SPAN_DEG / 2, SPAN_DEG / 2, count),
            ]
        )

    homes, works, shops = places(max(1, persons * 2 // 5)), places(max(1, persons // 20)), places(max(1, persons // 50))
    return City(
        persons=np.array([f"p{i:06d}" for i in range(persons)], dtype=object),
        homes=homes[rng.integers(0, len(homes), persons)],
        works=works[rng.integers(0, len(works), persons)],
        shops=shops[rng.integers(0, len(shops), persons)],
    )


def day_slices(city: City, day: int, rng: np.random.Generator):
    """One day of pings, one 15-minute slice at a time: (persons, ts, lat, lon)."""
    n = len(city.persons)
    offset = rng.integers(0, PING_EVERY, n)
    for slot in range(DAY // PING_EVERY):
        hour = slot * PING_EVERY / 3600
        where = city.homes if hour < 8 or hour >= 20 else city.works if hour < 17 else city.shops
        jitter = rng.normal(0, 0.0001, (n, 2))
        yield (
            city.persons,
            T0 + day * DAY + slot * PING_EVERY + offset,
            where[:, 0] + jitter[:, 0],
            where[:, 1] + jitter[:, 1],
        )


def cases_of(city: City, count: int, rng: np.random.Generator) -> list[CaseWindow]:
    chosen = rng.choice(len(city.persons), count, replace=False)
    return [CaseWindow(f"case-{i}", city.persons[i], T0, None) for i in sorted(chosen.tolist())]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest_day(index: PresenceIndex, city: City, seed: int, day: int = 0) -> tuple[float, int, list[Exposure]]:
    rng = np.random.default_rng(seed)
    slices = list(day_slices(city, day, rng))
    found: list[Exposure] = []
    started = time.perf_counter()
    for persons, ts, lat, lon in slices:
        found += index.ingest_batch(persons, ts, lat, lon)
    found += index.advance(T0 + (day + 1) * DAY + 2 * PING_EVERY)
    return time.perf_counter() - started, sum(len(s[0]) for s in slices), found


def subsample_ratio(city: City, sample: int, cases: int, seed: int) -> tuple[float, float, int]:
    """Index and brute force on the same small city: (index s, brute force s, exposures)."""
    rng = np.random.default_rng(seed)
    small = City(city.persons[:sample], city.homes[:sample], city.works[:sample], city.shops[:sample])
    pings = [
        (p, int(t), float(a), float(b))
        for persons, ts, lat, lon in day_slices(small, 0, rng)
        for p, t, a, b in zip(persons.tolist(), ts.tolist(), lat.tolist(), lon.tolist())
    ]
    windows = cases_of(small, cases, np.random.default_rng(seed + 1))
    started = time.perf_counter()
    index = PresenceIndex(SPECS, retention_s=14 * DAY)
    who, ts, lat, lon = (np.array(c) for c in zip(*pings))
    index.ingest_batch(who, ts, lat, lon)
    index.advance(T0 + DAY + 2 * PING_EVERY)
    for window in windows:
        index.case(window)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    expected = pairwise_exposures(pings, SPECS, windows, watermark=T0 + DAY + 2 * PING_EVERY)
    brute_s = time.perf_counter() - started
    if index.exposures() != expected:
        raise SystemExit("index and brute force disagree on the subsample")
    return index_s, brute_s, len(expected)


def retention_run(persons: int, days: int, seed: int) -> list[tuple[int, int, int]]:
    """Several days with a one-day look-back: (day, stays held, bytes held) after each."""
    specs = [ContactSpec(s.kind, s.resolution, s.max_gap_s, s.include_neighbours, DAY) for s in SPECS]
    index = PresenceIndex(specs, retention_s=DAY)
    city = make_city(persons, np.random.default_rng(seed))
    held = []
    for day in range(days):
        ingest_day(index, city, seed + day, day)
        index.expire(T0 + (day + 1) * DAY)
        stats = index.stats()
        held.append((day + 1, stats.stays, stats.nbytes))
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 persons and a small subsample")
    parser.add_argument("--persons", type=int, help="city size (default 100,000; 10,000 with --quick)")
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    persons = args.persons or (10_000 if args.quick else 100_000)
    sample, sample_cases = (300, 3) if args.quick else (400, 4)
    rng = np.random.default_rng(args.seed)
    city = make_city(persons, rng)
    windows = cases_of(city, args.cases, rng)
    print(f"synthetic day: {persons:,} persons, a ping every 15 min, {args.cases} cases, specs:")
    for spec in SPECS:
        print(f"  {spec.kind}: H3 res {spec.resolution}, max gap {spec.max_gap_s // 60} min, "
              f"neighbours {'yes' if spec.include_neighbours else 'no'}")

    rss_before = peak_rss_mb()
    index = PresenceIndex(SPECS, retention_s=14 * DAY)
    ingest_s, pings, _ = ingest_day(index, city, args.seed)
    stats = index.stats()
    print(f"ingest:    {pings:,} pings in {ingest_s:.2f} s = {pings / ingest_s:,.0f} pings/s "
          f"({stats.stays:,} stays held)")
    started = time.perf_counter()
    backward = [e for w in windows for e in index.case(w)]
    backward_s = time.perf_counter() - started
    found = index.exposures()
    kinds = {k: sum(1 for e in found if e.kind == k) for k in (s.kind for s in SPECS)}
    print(f"backward:  {len(found):,} exposures ({', '.join(f'{v:,} {k}' for k, v in kinds.items())}) "
          f"for {args.cases} late cases in {backward_s:.2f} s = {len(backward) / backward_s:,.0f} exposures/s")
    stats = index.stats()
    print(f"memory:    index arrays {stats.nbytes / 2**20:,.1f} MiB = {stats.nbytes / stats.stays:.0f} B/stay, "
          f"{stats.nbytes / persons / 1024:.1f} KiB per person-day; "
          f"process peak RSS {peak_rss_mb():,.0f} MiB, with the day's pings held in memory "
          f"(was {rss_before:,.0f} MiB before)")
    del index

    forward_index = PresenceIndex(SPECS, retention_s=14 * DAY)
    for window in windows:
        forward_index.case(window)
    forward_s, _, updates = ingest_day(forward_index, city, args.seed)
    same = forward_index.exposures() == found
    print(f"forward:   cases known first, {pings:,} pings in {forward_s:.2f} s = {pings / forward_s:,.0f} pings/s, "
          f"{len(updates):,} exposure updates = {len(updates) / forward_s:,.0f}/s; "
          f"same exposures as backward: {'yes' if same else 'NO'}")
    del forward_index

    index_s, brute_s, sub_found = subsample_ratio(city, sample, sample_cases, args.seed)
    scale = (persons / sample) * (args.cases / sample_cases)
    print(f"baseline:  brute-force pairwise on {sample} persons x {sample_cases} cases: {brute_s:.2f} s, "
          f"index {index_s:.3f} s, same {sub_found} exposures; ratio {brute_s / index_s:,.0f}x")
    print(f"           brute force extrapolated to the full city ({scale:,.0f}x the subsample work): "
          f"{brute_s * scale:,.0f} s vs index {ingest_s + backward_s:.1f} s (ingest + backward): "
          f"ratio {brute_s * scale / (ingest_s + backward_s):,.0f}x")

    days = 4
    held = retention_run(persons // 10, days, args.seed)
    print(f"retention: {persons // 10:,} persons, look-back 1 day, held after each day: "
          + ", ".join(f"day {d}: {s:,} stays / {b / 2**20:.1f} MiB" for d, s, b in held))


if __name__ == "__main__":
    main()
