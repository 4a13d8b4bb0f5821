"""Reading whole topics from outside the pipeline (CLIs, the demo): from the start until quiet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any


def read_from_start(
    bootstrap: str, topic: str, idle_s: float = 3.0, follow: bool = False
) -> Iterator[Any]:
    """Every record of every partition of `topic`; without `follow`, stop after `idle_s` quiet seconds.

    Reading stops on silence rather than at the reported end offsets, which the
    embedded broker under-reports after batched produce.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        quiet_since = time.monotonic()
        while follow or time.monotonic() - quiet_since < idle_s:
            batch = consumer.poll(timeout_ms=200)
            if batch:
                quiet_since = time.monotonic()
            for records in batch.values():
                yield from records
    finally:
        consumer.close()
