"""Python's cyclic garbage collector, tuned for the scoring core's many small long-lived objects.

By default CPython runs a young-generation pass every 700 net allocations, and passes
over older generations grow with everything that survived. Scoring a city keeps
millions of small objects alive (exposure records, tallies, proofs) and allocates a
few for every record, so the collector kept re-examining them: replaying the mild
10,000 x 30 city spent about 65 of 430 CPU seconds there (measured with the collector
off and with a 100,000 threshold: the same 363 s). The core frees its objects by
reference counting (it makes no reference cycles worth waiting for), so collecting
less often costs no memory that matters.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 100_000
"""Net allocations between young-generation passes (CPython's default is 700)."""


def tune_for_scoring() -> None:
    """Collect cycles less often (never more often than already set), for the whole process."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_GENERATION), middle, old)
