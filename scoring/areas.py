"""Risk-area designations: polygons filled to H3 cells, and their timeline.

An area's designations form a timeline: each holds from its `valid_from` until its
`valid_until` or the area's next designation, whichever comes first; a designation
at level `low` ends the risk. Each medium or high period is a source of area
exposures named by an opaque reference, so exposures never carry the area's name
or shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from pydantic import BaseModel

from scoring.exposure import opaque_ref

RISK_LEVELS = ("medium", "high")
LEVELS = ("low", *RISK_LEVELS)
_OPEN = np.iinfo(np.int64).max


EARTH_RADIUS_KM = 6371.0088
MAX_CELLS = 2_000_000
"""The most cells one designation may fill: about 30,000 km2 at resolution 10 (the default rules'),
and some 100 MB while it is filled. Intake bounds areas in km2 and vertices (`scoring.limits`);
this bound holds whatever resolution a rule set asks for."""


class AreaTooLarge(ValueError):
    """A designation that would fill more cells than allowed; the message says how many."""


def _mapping(geometry: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return geometry.model_dump() if isinstance(geometry, BaseModel) else geometry


def _polygons(geometry: BaseModel | dict[str, Any]) -> list[list[list[Any]]]:
    mapping = _mapping(geometry)
    return [mapping["coordinates"]] if mapping["type"] == "Polygon" else list(mapping["coordinates"])


def vertex_count(geometry: BaseModel | dict[str, Any]) -> int:
    """Positions in every ring of a GeoJSON Polygon or MultiPolygon (what filling costs per cell)."""
    return sum(len(ring) for polygon in _polygons(geometry) for ring in polygon)


def outline(geometry: BaseModel | dict[str, Any]) -> tuple[float, float]:
    """(km2 that the outer rings cover at most; km of every ring's edges), on a sphere.

    On an equal-area projection, a ring encloses no more than its bounding box, nor
    than the triangles fanned out from its first position (exact for a convex ring),
    even when it crosses itself; the lesser of the two is taken. Edges are taken
    the short way round (across the antimeridian when that is shorter), as H3 takes
    them. Linear in the vertices: this is what is computed before deciding whether
    an area is too large to fill.
    """
    area = perimeter = 0.0
    for polygon in _polygons(geometry):
        for number, ring in enumerate(polygon):
            points = np.radians(np.asarray(ring, dtype=np.float64).reshape(-1, 2))
            lon, lat = points[:, 0], points[:, 1]
            step = (np.diff(lon) + math.pi) % (2 * math.pi) - math.pi
            if number == 0:
                x = np.concatenate([[0.0], np.cumsum(step)])
                y = np.sin(lat)
                dx, dy = x[1:] - x[0], y[1:] - y[0]
                fan = float(np.sum(np.abs(dx[:-1] * dy[1:] - dx[1:] * dy[:-1]))) / 2
                area += min(fan, float(np.ptp(x) * np.ptp(y)))
            half = np.sin(np.diff(lat) / 2) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(step / 2) ** 2
            perimeter += float(np.sum(2 * np.arcsin(np.sqrt(np.clip(half, 0.0, 1.0)))))
    return area * EARTH_RADIUS_KM**2, perimeter * EARTH_RADIUS_KM


def estimated_cells(geometry: BaseModel | dict[str, Any], resolution: int) -> int:
    """About how many cells at `resolution` overlap the geometry: those inside, and those on its edges.

    It errs high: cells are up to about a third smaller than average in places.
    """
    area, perimeter = outline(geometry)
    inside = 1.5 * area / h3i.average_hexagon_area(resolution, "km^2")
    edges = 2 * perimeter / h3i.average_hexagon_edge_length(resolution, "km")
    return math.ceil(inside + edges) + len(_polygons(geometry))


def too_many_cells(geometry: BaseModel | dict[str, Any], resolution: int, max_cells: int = MAX_CELLS) -> str | None:
    """Why the geometry has too many cells at `resolution` to fill; None when it does not."""
    estimate = estimated_cells(geometry, resolution)
    if estimate <= max_cells:
        return None
    return f"area too large: about {estimate:,} cells at H3 resolution {resolution}, at most {max_cells:,}"


def area_cells(geometry: BaseModel | dict[str, Any], resolution: int, max_cells: int = MAX_CELLS) -> np.ndarray:
    """The cells (sorted int64) that overlap a GeoJSON Polygon or MultiPolygon.

    Cells partly inside count: a designation is a precaution, and a small area
    (one building) must not vanish between cell centres. An area of more than
    `max_cells` cells (estimated before filling) raises `AreaTooLarge`.
    """
    problem = too_many_cells(geometry, resolution, max_cells)
    if problem is not None:
        raise AreaTooLarge(problem)
    shape = h3i.geo_to_h3shape(_mapping(geometry))
    cells = h3i.h3shape_to_cells_experimental(shape, resolution, contain="overlap")
    return np.unique(np.array(cells, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class Period:
    """A time an area held a risk level: the source of area exposures."""

    source: str
    level: str
    cells: np.ndarray
    start: int
    end: int
    """`OPEN_END` while no end is known."""
    known_at: int
    """When the designation became known."""


@dataclass(frozen=True, slots=True)
class _Designation:
    level: str
    cells: np.ndarray
    valid_until: int | None
    known_at: int


class AreaTimeline:
    """Every area's designations, in effect-time order whatever their arrival order."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self._areas: dict[str, dict[int, _Designation]] = {}
        self.cells_filled = 0
        """Cells generated by every fill so far: the work designations cost."""

    def designate(
        self,
        area_ref: str,
        level: str,
        geometry: BaseModel | dict[str, Any],
        valid_from: int,
        valid_until: int | None,
        known_at: int | None = None,
    ) -> tuple[list[Period], list[Period]]:
        """Record a designation (known at `known_at`, by default `valid_from`).

        Returns the area's risk periods before and after it. Raises `AreaTooLarge`,
        changing nothing, when the area has too many cells to fill.
        """
        if level not in LEVELS:
            raise ValueError(f"area level must be one of {', '.join(LEVELS)}, got {level!r}")
        if valid_until is not None and valid_until <= valid_from:
            raise ValueError("valid_until must be after valid_from")
        before = self.periods(area_ref)
        cells = area_cells(geometry, self.resolution) if level in RISK_LEVELS else np.empty(0, dtype=np.int64)
        self.cells_filled += len(cells)
        known = valid_from if known_at is None else known_at
        self._areas.setdefault(area_ref, {})[valid_from] = _Designation(level, cells, valid_until, known)
        return before, self.periods(area_ref)

    def forget_ended(self, cutoff: int) -> None:
        """Drop designations whose period ended at or before `cutoff` (later periods do not depend on them)."""
        for area_ref in list(self._areas):
            timeline = sorted(self._areas[area_ref].items())
            for i, (start, designation) in enumerate(timeline):
                end = designation.valid_until if designation.valid_until is not None else _OPEN
                if i + 1 < len(timeline):
                    end = min(end, timeline[i + 1][0])
                if end <= cutoff:
                    del self._areas[area_ref][start]
            if not self._areas[area_ref]:
                del self._areas[area_ref]

    def __len__(self) -> int:
        return sum(len(timeline) for timeline in self._areas.values())

    def periods(self, area_ref: str) -> list[Period]:
        """The medium and high periods of one area."""
        timeline = sorted(self._areas.get(area_ref, {}).items())
        found = []
        for i, (start, designation) in enumerate(timeline):
            end = designation.valid_until if designation.valid_until is not None else _OPEN
            if i + 1 < len(timeline):
                end = min(end, timeline[i + 1][0])
            if designation.level in RISK_LEVELS and end > start and len(designation.cells):
                source = opaque_ref("area", area_ref, str(start))
                found.append(Period(source, designation.level, designation.cells, start, end, designation.known_at))
        return found
