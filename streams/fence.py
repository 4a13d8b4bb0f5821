"""Reading a topic exactly up to now, on a broker whose reported end offsets cannot be trusted.

The embedded broker under-reports ListOffsets(latest) after batched produce (5,000
records produced, an end offset of 4,795 reported, all 5,000 consumable), so "read to
the end offset" silently stops short there. Instead the reader writes a fence of its
own to every partition and reads until it meets it: everything written before the
fence is read, whatever the broker says the end is.
"""

from __future__ import annotations

import uuid

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

FENCE = "fence"


async def read_to_fence(
    producer: AIOKafkaProducer, bootstrap: str, topic: str, partitions: frozenset[int], writer: str
) -> list[bytes]:
    """Every message on `partitions` of `topic` written before a fence `writer` writes now.

    Fences are keyed by writer: Apache Kafka refuses keyless records on a compacted
    topic, and one key per writer lets compaction keep only each writer's latest fence.
    Fences (anyone's) are JSON objects of type `fence`; readers of these topics skip them.
    """
    fence = orjson.dumps({"type": FENCE, "id": uuid.uuid4().hex})
    for partition in partitions:
        await producer.send_and_wait(topic, fence, key=f"{FENCE}/{writer}".encode(), partition=partition)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    found: list[bytes] = []
    try:
        reader.assign([TopicPartition(topic, p) for p in partitions])
        await reader.seek_to_beginning()
        waiting = set(partitions)
        while waiting:
            for tp, records in (await reader.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.value == fence:
                        waiting.discard(tp.partition)
                    elif tp.partition in waiting:
                        found.append(record.value)
    finally:
        await reader.stop()
    return found
