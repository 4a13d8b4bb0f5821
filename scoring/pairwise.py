"""Brute-force co-presence: every case's stays against every other person's stays.

The reference the presence index is checked against (property tests) and measured
against (bench/contacts.py). Plain Python, written from the definitions and
sharing no code with the index beyond H3 and the area fill: O(persons x stays^2)
per case, fine for small cities and subsamples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import h3.api.basic_int as h3i

from scoring.areas import RISK_LEVELS, area_cells
from scoring.exposure import AREA, CaseWindow, ContactSpec, Exposure, opaque_ref

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Designation:
    """An area designation as `PresenceIndex.designate` takes it."""

    area_ref: str
    level: str
    geometry: dict[str, Any]
    valid_from: int
    valid_until: int | None = None
    known_at: int | None = None


def person_stays(
    pings: Iterable[tuple[str, int, float, float]], resolution: int, finest: int, max_gap_s: int, watermark: int
) -> dict[str, list[tuple[int, int, int]]]:
    """Each person's stays (cell, start, end) from their pings, by definition.

    A ping's cell at `resolution` is the ancestor of its cell at the `finest`
    resolution in use, so that places nest across resolutions.
    """
    at: dict[str, dict[int, int]] = defaultdict(dict)
    for person, ts, lat, lon in pings:
        cell = h3i.cell_to_parent(h3i.latlng_to_cell(lat, lon, finest), resolution)
        at[person][ts] = max(cell, at[person].get(ts, cell))
    stays = {}
    for person, seen in at.items():
        times = sorted(seen)
        mine = []
        for i, ts in enumerate(times):
            end = ts + max_gap_s if i + 1 == len(times) else min(times[i + 1], ts + max_gap_s)
            if i + 1 < len(times) or end <= watermark:
                mine.append((seen[ts], ts, end))
        stays[person] = mine
    return stays


def _add(tally: dict[str, Any], start: int, end: int, origin: int) -> None:
    tally["first"] = min(tally["first"], start)
    tally["last"] = max(tally["last"], end)
    while start < end:
        day = (start - origin) // DAY_S
        cut = min(end, origin + (day + 1) * DAY_S)
        tally["days"][day] += cut - start
        start = cut


def _exposures(
    tallies: dict[tuple[str, str, str], dict[str, Any]], levels: dict[str, str], known: dict[str, int]
) -> list[Exposure]:
    found = []
    for (person, kind, source), tally in tallies.items():
        seconds = sum(tally["days"].values())
        if seconds <= 0:
            continue
        found.append(
            Exposure(
                exposure_id=Exposure.make_id(person, kind, source),
                person=person,
                kind=kind,
                source=source,
                first_at=tally["first"],
                last_at=tally["last"],
                minutes=seconds / 60,
                minutes_by_day=tuple((d, s / 60) for d, s in sorted(tally["days"].items()) if s),
                level=levels.get(source),
                known_at=max(known[source], tally["last"]) if source in known else None,
            )
        )
    return sorted(found, key=lambda e: (e.source, e.kind, e.person))


def _new_tally() -> dict[str, Any]:
    return {"first": 2**63 - 1, "last": 0, "days": defaultdict(int)}


def pairwise_exposures(
    pings: Sequence[tuple[str, int, float, float]],
    specs: Sequence[ContactSpec],
    cases: Sequence[CaseWindow],
    designations: Sequence[Designation] = (),
    watermark: int = 2**62,
    area_kind: str | None = None,
    case_known_at: dict[str, int] | None = None,
) -> list[Exposure]:
    """The exposures all inputs imply; for each case_ref the last window given wins.

    `case_known_at` gives when each case became known, if told.
    """
    final = {w.case_ref: w for w in cases}
    tallies: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(_new_tally)
    finest = max(s.resolution for s in specs)
    for spec in specs:
        stays = person_stays(pings, spec.resolution, finest, spec.max_gap_s, watermark)
        for window in final.values():
            if window.retracted:
                continue
            until = window.infectious_until if window.infectious_until is not None else 2**63 - 1
            for case_cell, case_start, case_end in stays.get(window.person, []):
                for person, theirs in stays.items():
                    if person == window.person:
                        continue
                    for cell, start, end in theirs:
                        near = cell == case_cell or (
                            spec.include_neighbours and h3i.are_neighbor_cells(cell, case_cell)
                        )
                        lo = max(start, case_start, window.infectious_from)
                        hi = min(end, case_end, until)
                        if near and hi > lo:
                            _add(tallies[(person, spec.kind, window.case_ref)], lo, hi, window.infectious_from)
    known = dict(case_known_at or {})
    levels = _area_tallies(pings, specs, designations, watermark, area_kind, tallies, known)
    return _exposures(tallies, levels, known)


def _area_tallies(
    pings: Sequence[tuple[str, int, float, float]],
    specs: Sequence[ContactSpec],
    designations: Sequence[Designation],
    watermark: int,
    area_kind: str | None,
    tallies: dict[tuple[str, str, str], dict[str, Any]],
    known: dict[str, int],
) -> dict[str, str]:
    if not designations:
        return {}
    if area_kind is None:
        spec = max(specs, key=lambda s: s.resolution)
    else:
        spec = next(s for s in specs if s.kind == area_kind)
    stays = person_stays(pings, spec.resolution, max(s.resolution for s in specs), spec.max_gap_s, watermark)
    by_area: dict[str, dict[int, Designation]] = defaultdict(dict)
    for d in designations:
        by_area[d.area_ref][d.valid_from] = d
    levels = {}
    for area_ref, timeline in by_area.items():
        starts = sorted(timeline)
        for i, start in enumerate(starts):
            d = timeline[start]
            end = d.valid_until if d.valid_until is not None else 2**63 - 1
            if i + 1 < len(starts):
                end = min(end, starts[i + 1])
            if d.level not in RISK_LEVELS:
                continue
            source = opaque_ref("area", area_ref, str(start))
            known[source] = start if d.known_at is None else d.known_at
            cells = set(area_cells(d.geometry, spec.resolution).tolist())
            for person, theirs in stays.items():
                for cell, s, e in theirs:
                    lo, hi = max(s, start), min(e, end)
                    if cell in cells and hi > lo:
                        levels[source] = d.level
                        _add(tallies[(person, AREA, source)], lo, hi, start)
    return levels
