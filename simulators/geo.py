"""Small-area geometry: metres to degrees and back, near a reference latitude."""

from __future__ import annotations

import math

import numpy as np

METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0


def metres_per_degree_lon(lat: float) -> float:
    """Length of one degree of longitude at latitude `lat`."""
    return METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(lat))


def offset_degrees(lat: float, north_m: np.ndarray, east_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Degrees of latitude and longitude that displacements in metres amount to near `lat`."""
    return north_m / METRES_PER_DEGREE_LAT, east_m / metres_per_degree_lon(lat)


def planar_metres(lat0: float, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular (x east, y north) metres of positions, good over a city."""
    return lon * metres_per_degree_lon(lat0), lat * METRES_PER_DEGREE_LAT
