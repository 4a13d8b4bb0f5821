"""Risk-area designations: polygons filled to H3 cells, and their timeline.

An area's designations form a timeline: each holds from its `valid_from` until its
`valid_until` or the area's next designation, whichever comes first; a designation
at level `low` ends the risk. Each medium or high period is a source of area
exposures named by an opaque reference, so exposures never carry the area's name
or shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from pydantic import BaseModel

from scoring.exposure import opaque_ref

RISK_LEVELS = ("medium", "high")
LEVELS = ("low", *RISK_LEVELS)
_OPEN = np.iinfo(np.int64).max


def area_cells(geometry: BaseModel | dict[str, Any], resolution: int) -> np.ndarray:
    """The cells (sorted int64) that overlap a GeoJSON Polygon or MultiPolygon.

    Cells partly inside count: a designation is a precaution, and a small area
    (one building) must not vanish between cell centres.
    """
    mapping = geometry.model_dump() if isinstance(geometry, BaseModel) else geometry
    shape = h3i.geo_to_h3shape(mapping)
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

        Returns the area's risk periods before and after it.
        """
        if level not in LEVELS:
            raise ValueError(f"area level must be one of {', '.join(LEVELS)}, got {level!r}")
        if valid_until is not None and valid_until <= valid_from:
            raise ValueError("valid_until must be after valid_from")
        before = self.periods(area_ref)
        cells = area_cells(geometry, self.resolution) if level in RISK_LEVELS else np.empty(0, dtype=np.int64)
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
