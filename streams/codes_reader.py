"""Reading the codes topic: every code record, in partition order, fences skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from streams.topics import Topics


def read_codes(bootstrap: str, topics: Topics, follow: bool = False, idle_s: float = 3.0) -> Iterator[dict[str, Any]]:
    """Code records from the beginning; without `follow`, stop after `idle_s` seconds with nothing new.

    Reading stops on silence rather than at the reported end offsets, which the
    embedded broker under-reports after batched produce.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topics.codes, p) for p in sorted(consumer.partitions_for_topic(topics.codes) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        quiet_since = time.monotonic()
        while follow or time.monotonic() - quiet_since < idle_s:
            batch = consumer.poll(timeout_ms=200)
            if batch:
                quiet_since = time.monotonic()
            for records in batch.values():
                for record in records:
                    data = orjson.loads(record.value)
                    if data.get("type") == "code":
                        yield data
    finally:
        consumer.close()


def distinct_changes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per level change (re-issues of the same change dropped), in timeline order."""
    by_change: dict[str, dict[str, Any]] = {}
    for record in records:
        by_change.setdefault(record["change_id"], record)
    return sorted(by_change.values(), key=lambda r: (r["assessed_at"], r["person"]))
