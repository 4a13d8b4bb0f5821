"""Reading a topic exactly up to now, on a broker whose reported end offsets cannot be trusted.

The embedded broker under-reports ListOffsets(latest) after batched produce (5,000
records produced, an end offset of 4,795 reported, all 5,000 consumable), so "read to
the end offset" silently stops short there. Instead the reader writes a fence of its
own to every partition and reads until it meets it: everything written before the
fence is read, whatever the broker says the end is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

FENCE = "fence"


async def write_fences(producer: Any, topic: str, partitions: frozenset[int], writer: str) -> dict[int, tuple[int, bytes]]:
    """Write a fence of `writer`'s to each of `partitions`: per partition, the offset after it and its value.

    Fences are keyed by writer: Apache Kafka refuses keyless records on a compacted
    topic, and one key per writer lets compaction keep only each writer's latest fence.
    Fences (anyone's) are JSON objects of type `fence`; readers of these topics skip them.
    """
    fence = new_fence()
    written = {}
    for partition in partitions:
        sent = await producer.send_and_wait(topic, fence, key=fence_key(writer), partition=partition)
        written[partition] = (sent.offset + 1, fence)
    return written


def new_fence() -> bytes:
    """A fence no one wrote before."""
    return orjson.dumps({"type": FENCE, "id": uuid.uuid4().hex})


def fence_key(writer: str) -> bytes:
    return f"{FENCE}/{writer}".encode()


async def read_to_fence(
    producer: Any, bootstrap: str, topic: str, partitions: frozenset[int], writer: str,
    starts: Mapping[int, int] | None = None,
) -> list[bytes]:
    """Every message on `partitions` of `topic` written before a fence `writer` writes now,
    from the beginning or, with `starts`, from those offsets on."""
    fences = await write_fences(producer, topic, partitions, writer)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    found: list[bytes] = []
    try:
        reader.assign([TopicPartition(topic, p) for p in partitions])
        await reader.seek_to_beginning()
        for partition, offset in (starts or {}).items():
            reader.seek(TopicPartition(topic, partition), offset)
        waiting = set(partitions)
        while waiting:
            for tp, records in (await reader.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.value == fences[tp.partition][1]:
                        waiting.discard(tp.partition)
                    elif tp.partition in waiting:
                        found.append(record.value)
    finally:
        await reader.stop()
    return found
