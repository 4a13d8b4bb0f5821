"""Districts: a jittered grid of convex quadrilaterals over the bounding box.

The authority designates whole districts, so each one is a named GeoJSON polygon.
Interior grid corners move by at most a fifth of a cell, which keeps every
quadrilateral convex, so a point drawn by bilinear interpolation of its corners
always falls inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.config import CityConfig

_JITTER = 0.2
_DISTRICT_WORDS = (
    "Jiangan",
    "Jianghan",
    "Qiaokou",
    "Hanyang",
    "Wuchang",
    "Qingshan",
    "Hongshan",
    "Dongxihu",
    "Hannan",
    "Caidian",
    "Jiangxia",
    "Huangpi",
    "Xinzhou",
    "Guanggu",
    "Zhuankou",
    "Houhu",
)


@dataclass(frozen=True)
class District:
    """One named area: `corners` are (lon, lat) counter-clockwise from the south-west."""

    id: str
    name: str
    corners: tuple[tuple[float, float], ...]

    def ring(self) -> list[list[float]]:
        """The closed GeoJSON linear ring ([lon, lat] positions, first equal to last)."""
        points = [[lon, lat] for lon, lat in self.corners]
        return points + [points[0]]

    def geometry(self) -> dict[str, object]:
        """The district as a GeoJSON Polygon."""
        return {"type": "Polygon", "coordinates": [self.ring()]}


def build_districts(config: CityConfig, rng: np.random.Generator) -> tuple[District, ...]:
    """The grid of districts, row by row from the south-west corner."""
    rows, cols = config.district_rows, config.district_cols
    lat_step = (config.north - config.south) / rows
    lon_step = (config.east - config.west) / cols
    lats = config.south + lat_step * np.arange(rows + 1)[:, None] + np.zeros((1, cols + 1))
    lons = config.west + lon_step * np.arange(cols + 1)[None, :] + np.zeros((rows + 1, 1))
    interior = (slice(1, rows), slice(1, cols))
    lats[interior] += rng.uniform(-_JITTER, _JITTER, lats[interior].shape) * lat_step
    lons[interior] += rng.uniform(-_JITTER, _JITTER, lons[interior].shape) * lon_step
    lats, lons = np.round(lats, 6), np.round(lons, 6)
    districts = []
    for r in range(rows):
        for c in range(cols):
            index = r * cols + c
            corners = tuple(
                (float(lons[i, j]), float(lats[i, j])) for i, j in ((r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c))
            )
            word = _DISTRICT_WORDS[index % len(_DISTRICT_WORDS)]
            suffix = "" if index < len(_DISTRICT_WORDS) else f" {index // len(_DISTRICT_WORDS) + 1}"
            districts.append(District(id=f"district-{index:02d}", name=f"{word}{suffix}", corners=corners))
    return tuple(districts)


def points_in(district_corners: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions inside quadrilaterals by bilinear interpolation.

    `district_corners` is (n, 4, 2) as (lon, lat) SW, SE, NE, NW; `u` runs west to
    east and `v` south to north, both in [0, 1]. Returns (lat, lon) arrays.
    """
    sw, se, ne, nw = (district_corners[:, k, :] for k in range(4))
    south = sw + (se - sw) * u[:, None]
    north = nw + (ne - nw) * u[:, None]
    point = south + (north - south) * v[:, None]
    return point[:, 1], point[:, 0]


def is_convex(corners: tuple[tuple[float, float], ...]) -> bool:
    """True when the polygon turns the same way at every corner."""
    n = len(corners)
    signs = set()
    for k in range(n):
        (x0, y0), (x1, y1), (x2, y2) = corners[k], corners[(k + 1) % n], corners[(k + 2) % n]
        cross = (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1)
        signs.add(cross > 0)
    return len(signs) == 1
