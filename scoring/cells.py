"""H3 cells on numpy arrays: snapping positions, coarser parents, ring-1 discs.

Cells are H3 indexes as int64 (the top bit of an H3 index is always 0). Snapping
is one vectorised call (h3ronpy, over h3o, a port of the H3 C library) at the finest
resolution asked for; a position's cell at a coarser resolution is the *ancestor* of that finest cell,
derived with bit arithmetic on the whole array (how H3 defines a parent). H3 cells
nest only approximately, so near a cell edge the ancestor can be the neighbour of
the cell a direct snap would give; in exchange, places nest exactly across
resolutions (two pings in the same ~100 m cell are always in the same ~800 m cell,
so a close contact is always a companion too), and it costs one snap, not one per
resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import h3.api.basic_int as h3i
import numpy as np
from h3ronpy.vector import coordinates_to_cells

_RESOLUTION_BITS = np.int64(0xF << 52)

Snapped = Mapping[int, np.ndarray]
"""Cells of positions snapped already, by resolution: replay snaps the next batch of pings in
another process while this one scores (`healthcode.snapahead`); a snap is most of a ping's cost."""


def snap(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """The H3 cell (int64) of each position at `resolution`."""
    # Half the cost of a call of h3-py's `latlng_to_cell` per position, and the same cells: every ping of
    # the reference cities at every resolution the rules use, and 2 M random points at all 16, were compared.
    return np.asarray(coordinates_to_cells(lat, lon, resolution)).view(np.int64)


def parent(cells: np.ndarray, resolution: int) -> np.ndarray:
    """The ancestors at `resolution` of cells at an equal or finer resolution."""
    unused_digits = np.int64((1 << (3 * (15 - resolution))) - 1)
    return (cells & ~_RESOLUTION_BITS & ~unused_digits) | np.int64(resolution << 52) | unused_digits


def taken(snapped: Snapped | None, index: slice | np.ndarray) -> Snapped | None:
    """The snapped cells of the positions `index` picks (a slice, or positions in order)."""
    return None if snapped is None else {resolution: cells[index] for resolution, cells in snapped.items()}


def snap_all(
    lat: np.ndarray, lon: np.ndarray, resolutions: Iterable[int], snapped: Snapped | None = None
) -> dict[int, np.ndarray]:
    """Cells of each position at every resolution asked for, with a single H3 snap (none when
    `snapped` holds the finest resolution's already)."""
    wanted = sorted(set(resolutions))
    finest = snapped[wanted[-1]] if snapped is not None and wanted[-1] in snapped else snap(lat, lon, wanted[-1])
    return {res: finest if res == wanted[-1] else parent(finest, res) for res in wanted}


@lru_cache(maxsize=65536)
def disc(cell: int) -> tuple[int, ...]:
    """The cell and its ring-1 neighbours (7 cells, 6 around a pentagon)."""
    return tuple(h3i.grid_disk(cell, 1))


def discs(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring-1 discs of many cells: (index of the source cell, disc cell) pairs."""
    members = [disc(cell) for cell in cells.tolist()]
    sizes = np.fromiter((len(m) for m in members), dtype=np.int64, count=len(members))
    flat = np.fromiter((c for m in members for c in m), dtype=np.int64, count=int(sizes.sum()))
    return np.repeat(np.arange(len(members)), sizes), flat
