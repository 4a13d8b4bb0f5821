"""Event time in the stream: a watermark per input partition, and inputs released in time order.

A partition's watermark is the largest event time seen on it minus the allowed
lateness. Quiet partitions must not hold the others back for ever, so:
- a partition that is caught up (the consumer has read to the high watermark of its
  last fetch) has nothing pending: its watermark is at least the largest event time
  seen anywhere minus the allowed lateness, as if its next event were that late;
- one caught up and silent for `idle_s` seconds of the worker's clock follows the
  largest event time seen anywhere (silence alone is not enough: a worker busy
  scoring is silent too);
- "seen anywhere" is bounded by what the catch-up report can vouch for (`Reports`):
  the broker said the partition was at its end when it answered a fetch, which says
  nothing of records sent after; events the worker read since, through another
  consumer or a later fetch, may be newer than records of this partition still on
  their way. Without that bound a visits partition reported at its end 300 ms earlier
  let case progress run past a test result that was already on the broker (a close
  contact then turned red late);
- in live mode (event time is wall time) a caught-up partition's watermark is at least
  the wall clock minus the allowed lateness (`floor`), so time moves on when every
  input is quiet.
Inputs wait in a heap until the aligned watermark (the least over every partition)
passes them, so the core sees them in event-time order, as replay does.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
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
    vouched: int | None = None
    """None while the partition may have a backlog; once the consumer has read everything
    the broker last said it holds, the newest event time seen anywhere that this report
    vouches for (see `Reports`)."""

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

    def caught_up(self, source: tuple[str, int], vouched: int | None) -> None:
        """Whether the consumer has read to the partition's last known high watermark.

        `vouched`: None when it has not; else the newest event time seen anywhere that
        the report of its end vouches for (`Reports.vouched`): as far as it may count.
        """
        clock = self.clocks.get(source)
        if clock is not None:
            clock.vouched = vouched

    def _idle(self, clock: PartitionClock, now: float) -> bool:
        return clock.may_idle and clock.vouched is not None and now - clock.last_arrival >= self.idle_s

    def idle(self, now: float) -> bool:
        """True when every partition that may go idle has been quiet for `idle_s`."""
        return all(self._idle(clock, now) for clock in self.clocks.values() if clock.may_idle)

    def aligned(self, now: float, newest: int | None = None, floor: int = NEVER) -> int:
        """The event time up to which every partition has delivered (within the lateness).

        A caught-up partition counts as having reached `newest` (default: the largest
        event time seen here; never more than its report vouches for) minus the
        lateness, or `floor` if later (live mode: the wall clock minus the lateness),
        and that `newest` itself once quiet for `idle_s`.
        Progress reported by others counts as reported. A partition with a backlog
        counts only what it delivered: rebuilding from old inputs stays in time order.
        """
        if newest is None:
            newest = self.newest()
        marks = [self._mark(clock, now, newest, floor) for clock in self.clocks.values()]
        return max(NEVER, min(marks, default=NEVER))

    def _mark(self, clock: PartitionClock, now: float, newest: int, floor: int) -> int:
        own = clock.max_ts if not clock.may_idle or clock.max_ts == NEVER else clock.max_ts - self.lateness_s
        if not clock.may_idle or clock.vouched is None:
            return own
        reach = min(newest, clock.vouched)
        if self._idle(clock, now):
            return max(own, reach, floor)
        return max(own, floor, reach - self.lateness_s if reach != NEVER else NEVER)


class Reports:
    """What a partition's latest "you are at the end" report can vouch for.

    A consumer learns that it has read a partition to its end from the broker's answer
    to a fetch, and only up to the moment the broker gave it. A client asks a broker
    for its next fetch only once it has the answer to the previous one, so the latest
    answer reflects at least everything on the broker when the one before it came in;
    of the rest of the stream, it vouches for what the worker had read by then. The
    client stamps each answer when it receives it; the worker notes, on the same clock,
    how far it has read (`saw`).
    """

    def __init__(self) -> None:
        self._seen: deque[tuple[float, int]] = deque()
        self._answers: dict[tuple[str, int], tuple[float | None, float]] = {}

    def saw(self, at: float, newest: int) -> None:
        """By clock time `at` the worker had read events up to `newest` (call as it reads on)."""
        if not self._seen or newest > self._seen[-1][1]:
            self._seen.append((at, newest))

    def vouched(self, source: tuple[str, int], answered_at: float | None) -> int:
        """The newest event time the latest report on `source` vouches for (NEVER: nothing yet).

        `answered_at`: when the client received its latest answer about `source` (None:
        no answer yet). Call every step, so that each answer is noticed.
        """
        if answered_at is None:
            return NEVER
        previous, latest = self._answers.get(source, (None, answered_at))
        if answered_at != latest:
            previous, latest = latest, answered_at
        self._answers[source] = (previous, latest)
        if previous is None:
            return NEVER
        self._forget()
        return max((newest for at, newest in self._seen if at < previous), default=NEVER)

    def _forget(self) -> None:
        """Drop what no report will ask about again: all but the last note before the oldest answer in use."""
        oldest = min((previous for previous, _ in self._answers.values() if previous is not None), default=None)
        while oldest is not None and len(self._seen) > 1 and self._seen[1][0] < oldest:
            self._seen.popleft()


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
