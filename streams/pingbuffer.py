"""The assigned `pings` partitions' records, from Faust's consumer to the stays stage in bulk.

Staged, a worker reads its `pings` partitions through Faust's consumer group (assignment,
rebalances and the rebuild's seeks are Faust's), but not through Faust's conductor and agent:
those cost about 80 µs a message (`../shared/FAUST-ON-TANSU.md`), twice what the stays stage
spends on a ping. The consumer (`streams.app.RebuildingConsumer`) hands each fetch's pings to a
`PingBuffer`, and the worker's turn takes them from it a batch at a time into the stays stage.

What the buffer guards against, since Faust's own bookkeeping of read offsets does not see
these records:
- records fetched before a seek: a rebuild (`restart`) empties the buffer and says where each
  partition is read from next. A fetch asked for before that may still bring records of the old
  position: those behind the new start are passed over, those ahead of it dropped (the seek reads
  them again). Records the client brings after a seek always start where it sought, so nothing
  it reads after the seek is lost;
- revoked partitions: a revocation empties the buffer (another worker may own them now);
- memory: the consumer does not fetch pings while the buffer holds a batch (`full`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from streams.step import Record


class PingBuffer:
    """Pings fetched and not yet taken, in fetch order, for the partitions a rebuild says."""

    def __init__(self, topic: str, batch_size: int) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self._records: list[Record] = []
        self._next: dict[int, int] = {}
        """Per partition, the offset of the next record to hold (what was sought, or held last)."""
        self._epoch = 0
        """Bumped by every rebuild and revocation: a fetch asked for before one may bring old records."""
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._records)

    def ticket(self) -> int:
        """Taken when a fetch is asked for, given back with its records (`hold`)."""
        return self._epoch

    def restart(self, starts: Mapping[int, int]) -> None:
        """A rebuild seeks each partition in `starts` to its offset: what is held was read before."""
        self._epoch += 1
        self._records = []
        self._next = dict(starts)
        self._room.set()

    def revoked(self) -> None:
        """The partitions are another worker's now: nothing held is to be taken."""
        self.restart({})

    def hold(self, ticket: int, partition: int, records: Sequence[Any]) -> None:
        """One partition's records of a fetch asked for at `ticket` (aiokafka's, in offset order)."""
        expected = self._next.get(partition)
        if expected is None:
            # Every rebuild seeks every pings partition it assigns: one it did not seek is not this
            # worker's (a fetch asked for before a revocation), and its stays stage must not take it.
            return
        kept = records
        if records and records[0].offset < expected:
            kept = [r for r in records if r.offset >= expected]
        if not kept:
            return
        if kept[0].offset > expected and ticket != self._epoch:
            # Fetched before the seek, from beyond where the partition is read from now.
            return
        # A jump ahead in a fetch asked for since the rebuild is the client's own (an offset reset
        # when retention removed what it was to read): held, and the stays stage decides (its
        # `Positions` take it mid-stream; as the first record after a rebuild it is not the start
        # the stage waits for, as with any step).
        self._records += [Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in kept]
        self._next[partition] = kept[-1].offset + 1
        if len(self._records) >= self.batch_size:
            self._room.clear()

    @property
    def full(self) -> bool:
        """A batch is held: the consumer fetches no more pings until the turn takes some."""
        return len(self._records) >= self.batch_size

    async def room(self, timeout: float) -> None:
        """Return once the buffer is not full, or after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._room.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def take(self, limit: int) -> list[Record]:
        """At most `limit` records, the oldest held first."""
        taken, self._records = self._records[:limit], self._records[limit:]
        if len(self._records) < self.batch_size:
            self._room.set()
        return taken
