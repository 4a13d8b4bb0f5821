"""The pings a staged worker's consumer sets aside for the stays stage: only what the partitions'
latest seeks read is taken, never a revoked partition's, and no more is fetched while a batch waits."""

from __future__ import annotations

import asyncio

from aiokafka.structs import ConsumerRecord

from streams.pingbuffer import PingBuffer

PINGS = "t.pings"


def _fetched(partition: int, offsets: range) -> list[ConsumerRecord[bytes, bytes]]:
    """What the client hands on for `partition`: a record per offset, in order."""
    return [ConsumerRecord(PINGS, partition, offset, 1_700_000_000_000 + offset, 0, b"k", b"v%d" % offset, None, 1, 2, [])
            for offset in offsets]


def _taken(buffer: PingBuffer) -> list[tuple[int, int]]:
    return [(record.partition, record.offset) for record in buffer.take(100)]


def _across_a_rebuild(starts: dict[int, int], partition: int, before: range, after: range) -> list[tuple[int, int]]:
    """What is taken of `partition`'s records `before`, from a fetch asked for before a rebuild that
    seeks `starts`, then `after`, from one asked for since."""
    buffer = PingBuffer(PINGS, batch_size=100)
    asked = buffer.ticket()
    buffer.restart(starts)
    buffer.hold(asked, partition, _fetched(partition, before))
    buffer.hold(buffer.ticket(), partition, _fetched(partition, after))
    return _taken(buffer)


def test_pings_are_taken_in_fetch_order_as_records_with_their_broker_timestamp() -> None:
    buffer = PingBuffer(PINGS, batch_size=100)
    buffer.restart({0: 5, 1: 0})
    buffer.hold(buffer.ticket(), 1, _fetched(1, range(0, 2)))
    buffer.hold(buffer.ticket(), 0, _fetched(0, range(5, 6)))
    [first, *_] = taken = buffer.take(100)
    assert [(r.partition, r.offset) for r in taken] == [(1, 0), (1, 1), (0, 5)]
    assert (first.topic, first.key, first.value, first.timestamp_ms) == (PINGS, b"k", b"v0", 1_700_000_000_000)
    assert len(buffer) == 0


def test_a_revoked_partitions_pings_held_are_never_taken() -> None:
    buffer = PingBuffer(PINGS, batch_size=100)
    buffer.restart({0: 0})
    buffer.hold(buffer.ticket(), 0, _fetched(0, range(0, 3)))
    assert len(buffer) == 3
    buffer.revoked()
    assert _taken(buffer) == []


def test_pings_held_before_a_rebuild_are_not_taken_after_it() -> None:
    # The rebuild seeks where its stage reads from: what was fetched before is read again from there.
    buffer = PingBuffer(PINGS, batch_size=100)
    buffer.restart({0: 10})
    buffer.hold(buffer.ticket(), 0, _fetched(0, range(10, 15)))
    assert len(buffer) == 5
    buffer.restart({0: 0})
    assert _taken(buffer) == []


def test_a_fetch_asked_for_before_a_rebuild_bringing_pings_beyond_its_start_is_dropped() -> None:
    # Taken, they would make the new stage skip from its start to them: the seek reads them again.
    assert _across_a_rebuild({0: 0}, 0, range(10, 15), range(0, 3)) == [(0, 0), (0, 1), (0, 2)]


def test_a_fetch_asked_for_before_a_rebuild_that_brings_what_its_seek_reads_keeps_it() -> None:
    # The client's fetch may wait across the seek and return what follows it: those pings are read
    # once (dropped, the client would not read them again, and the stage would never get its start).
    assert _across_a_rebuild({0: 4}, 0, range(4, 7), range(7, 9)) == [(0, 4), (0, 5), (0, 6), (0, 7), (0, 8)]


def test_pings_before_where_a_rebuild_reads_from_are_passed_over_and_none_is_held_twice() -> None:
    # Fetched before the seek from before its start, then the seek's own reading from the start.
    assert _across_a_rebuild({0: 5}, 0, range(3, 8), range(5, 10)) == [(0, 5), (0, 6), (0, 7), (0, 8), (0, 9)]


def test_a_jump_ahead_in_a_fetch_asked_for_since_the_rebuild_is_the_clients_and_kept() -> None:
    # The client moved on by itself (an offset reset once retention removed what it was to read):
    # dropped, every later fetch would be too, and the partition would stall.
    buffer = PingBuffer(PINGS, batch_size=100)
    buffer.restart({0: 0})
    buffer.hold(buffer.ticket(), 0, _fetched(0, range(0, 2)))
    buffer.hold(buffer.ticket(), 0, _fetched(0, range(50, 52)))
    assert _taken(buffer) == [(0, 0), (0, 1), (0, 50), (0, 51)]


def test_a_partition_no_rebuild_sought_is_not_this_workers_and_nothing_of_it_is_held() -> None:
    # Every rebuild seeks every pings partition it assigns: a fetch asked for before a revocation
    # may still bring another's, which the stays stage would take (and snapshot) as its own.
    assert _across_a_rebuild({0: 0}, 1, range(7, 9), range(9, 11)) == []


def test_the_buffer_is_full_with_a_batch_held_and_has_room_once_the_turn_takes_some() -> None:
    async def states() -> list[bool]:
        buffer = PingBuffer(PINGS, batch_size=4)
        buffer.restart({0: 0})
        seen = [buffer.full]
        buffer.hold(buffer.ticket(), 0, _fetched(0, range(0, 5)))
        seen.append(buffer.full)
        waiting = asyncio.create_task(buffer.room(timeout=30.0))
        await asyncio.sleep(0)
        seen.append(waiting.done())
        assert len(buffer.take(2)) == 2
        await asyncio.wait_for(waiting, timeout=5.0)
        return seen + [buffer.full]

    assert asyncio.run(states()) == [False, True, False, False]


def test_waiting_for_room_gives_up_after_its_timeout() -> None:
    async def waited() -> bool:
        buffer = PingBuffer(PINGS, batch_size=1)
        buffer.restart({0: 0})
        buffer.hold(buffer.ticket(), 0, _fetched(0, range(0, 1)))
        await buffer.room(timeout=0.01)
        return buffer.full

    assert asyncio.run(waited())
