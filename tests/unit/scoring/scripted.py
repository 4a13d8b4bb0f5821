"""A presence side that finds what a test tells it, for specifying the time loop without pings."""

from __future__ import annotations

from scoring.city import Found, HoldsNoGrowth, PingBuffer
from scoring.exposure import Exposure

Script = dict[int, tuple[list[Exposure], list[Exposure]]]
"""By tick (the watermark of its flush): the records its pings find, and those time passing finds."""


class Scripted(HoldsNoGrowth, PingBuffer):
    """Finds, at the flush of each tick of the script, what the script says (index 0 only); nothing else."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = dict(script)

    def flush(self, before: int, watermark: int) -> tuple[Found, Found]:
        ingested, advanced = self.script.pop(watermark, ([], []))
        return {0: ingested}, {0: advanced}

    def next_change(self) -> int | None:
        return min(self.script, default=None)

    def designate(self, event, now, until) -> Found:
        return {}

    def case(self, window, known_at) -> Found:
        return {}

    def probe(self, index, window, known_at) -> list[Exposure]:
        return []

    def expire(self, day) -> None:
        pass

    def exposures(self, index) -> list[Exposure]:
        return []

    area_cells_filled = 0
