"""Independent, reproducible random streams: one numpy Generator per (purpose, index).

Keying each stream by purpose and day (or block) means a change in how one model
draws never shifts the numbers another model sees, and the same seed always gives
the same run.
"""

from __future__ import annotations

import numpy as np

_PURPOSES = {
    "city": 1,
    "schedule": 2,
    "pings": 3,
    "transmission": 4,
    "health": 5,
    "arrival": 6,
    "faults": 7,
    "seeding": 8,
}


def generator(seed: int, purpose: str, *index: int) -> np.random.Generator:
    """The random stream for `purpose` (and an optional index such as a day) under `seed`."""
    sequence = np.random.SeedSequence(seed, spawn_key=(_PURPOSES[purpose], *index))
    return np.random.Generator(np.random.PCG64(sequence))
