"""Event time in the stream: a watermark per input partition, and inputs released in time order.

A partition's watermark is the largest event time seen on it minus the allowed
lateness. Quiet partitions must not hold the others back for ever, so:
- a partition that is caught up (the consumer has read to the high watermark of its
  last fetch) has nothing pending: its watermark is at least the largest event time
  seen anywhere minus the allowed lateness, as if its next event were that late;
- one caught up and silent for `idle_s` seconds of the worker's clock follows the
  largest event time seen anywhere (silence alone is not enough: a worker busy
  scoring is silent too);
- in live mode (event time is wall time) a caught-up partition's watermark is at least
  the wall clock minus the allowed lateness (`floor`), so time moves on when every
  input is quiet.
Inputs wait in a heap until the aligned watermark (the least over every partition)
passes them, so the core sees them in event-time order, as replay does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NEVER = -(2**62)


@dataclass
class PartitionClock:
    """Event-time progress of one input partition."""

    max_ts: int = NEVER
    last_arrival: float = 0.0
    """The worker clock (monotonic seconds) when the partition last delivered something."""
    may_idle: bool = True
    """False for progress that another worker reports: its silence means it is gone, not done."""
    caught_up: bool = False
    """The consumer has read everything the broker last said the partition holds."""

    def saw(self, ts: int, now: float) -> None:
        self.max_ts = max(self.max_ts, ts)
        self.last_arrival = now


@dataclass
class Watermarks:
    """The aligned watermark over a set of input partitions."""

    lateness_s: int
    idle_s: float
    clocks: dict[tuple[str, int], PartitionClock] = field(default_factory=dict)

    def track(self, sources: Iterable[tuple[str, int]], now: float, may_idle: bool = True) -> None:
        """Partitions that hold the watermark back from now on (a new one starts idle-timed from `now`)."""
        for source in sources:
            self.clocks.setdefault(source, PartitionClock(last_arrival=now, may_idle=may_idle))

    def saw(self, source: tuple[str, int], ts: int, now: float) -> None:
        self.clocks.setdefault(source, PartitionClock()).saw(ts, now)

    def progress(self, source: tuple[str, int], through: int, now: float) -> None:
        """A partition reported (not delivered) its progress, as case progress markers do."""
        clock = self.clocks.setdefault(source, PartitionClock())
        if through > clock.max_ts:
            clock.max_ts = through
            clock.last_arrival = now

    def newest(self) -> int:
        """The largest event time seen anywhere."""
        return max((clock.max_ts for clock in self.clocks.values()), default=NEVER)

    def caught_up(self, source: tuple[str, int], caught_up: bool) -> None:
        """Whether the consumer has read to the partition's last known high watermark."""
        clock = self.clocks.get(source)
        if clock is not None:
            clock.caught_up = caught_up

    def _idle(self, clock: PartitionClock, now: float) -> bool:
        return clock.may_idle and clock.caught_up and now - clock.last_arrival >= self.idle_s

    def idle(self, now: float) -> bool:
        """True when every partition that may go idle has been quiet for `idle_s`."""
        return all(self._idle(clock, now) for clock in self.clocks.values() if clock.may_idle)

    def aligned(self, now: float, newest: int | None = None, floor: int = NEVER) -> int:
        """The event time up to which every partition has delivered (within the lateness).

        A caught-up partition counts as having reached `newest` (default: the largest
        event time seen here) minus the lateness, or `floor` if later (live mode: the
        wall clock minus the lateness), and `newest` itself once quiet for `idle_s`.
        Progress reported by others counts as reported. A partition with a backlog
        counts only what it delivered: rebuilding from old inputs stays in time order.
        """
        if newest is None:
            newest = self.newest()
        marks = [self._mark(clock, now, newest, floor) for clock in self.clocks.values()]
        return max(NEVER, min(marks, default=NEVER))

    def _mark(self, clock: PartitionClock, now: float, newest: int, floor: int) -> int:
        own = clock.max_ts if not clock.may_idle or clock.max_ts == NEVER else clock.max_ts - self.lateness_s
        if not clock.may_idle or not clock.caught_up:
            return own
        if self._idle(clock, now):
            return max(newest, floor)
        return max(own, floor, newest - self.lateness_s if newest != NEVER else NEVER)


class TimeOrder:
    """Inputs held until the watermark passes them, then released in (time, arrival) order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, ts: int, item: Any) -> None:
        heapq.heappush(self._heap, (ts, next(self._seq), item))

    def release(self, watermark: int, limit: int | None = None) -> tuple[list[tuple[int, Any]], int]:
        """Held inputs with time at or before `watermark`, in order, and the watermark they complete.

        With `limit`, at most about that many: the rest of their last moment comes
        along (a moment is never split), and the watermark returned stops before the
        first input held back.
        """
        out = []
        while self._heap and self._heap[0][0] <= watermark:
            if limit is not None and len(out) >= limit and self._heap[0][0] != out[-1][0]:
                return out, self._heap[0][0] - 1
            ts, _, item = heapq.heappop(self._heap)
            out.append((ts, item))
        return out, watermark
