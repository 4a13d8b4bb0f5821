"""Reading whole topics from outside the pipeline (CLIs, the demo): from the start until quiet."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson


class TopicUnavailable(Exception):
    """A topic that cannot be read: the broker does not answer, or fails mid-read."""


class NoSuchTopic(TopicUnavailable):
    """The broker answers but has no topic of that name (never created, or another prefix)."""


def read_from_start(
    bootstrap: str, topic: str, idle_s: float = 3.0, follow: bool = False, connect_timeout_s: float = 5.0,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Any]:
    """Every record of every partition of `topic`; without `follow`, stop after `idle_s` quiet seconds.

    Reading stops on silence rather than at the reported end offsets, which the
    embedded broker under-reports after batched produce. A reader never creates the
    topic it reads: a missing one raises `NoSuchTopic`, an unreachable broker (after
    `connect_timeout_s`) `TopicUnavailable`.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, allow_auto_create_topics=False,
            bootstrap_timeout_ms=int(connect_timeout_s * 1000),
        )
    except KafkaError as error:
        raise TopicUnavailable(f"cannot reach the broker at {bootstrap}: {error}") from None
    try:
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        if not numbers:
            raise NoSuchTopic(f"the broker at {bootstrap} has no topic {topic}")
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        quiet_since = time.monotonic()
        while not stop() and (follow or time.monotonic() - quiet_since < idle_s):
            batch = consumer.poll(timeout_ms=200)
            if batch:
                quiet_since = time.monotonic()
            for records in batch.values():
                yield from records
    except KafkaError as error:
        raise TopicUnavailable(f"cannot read {topic} from {bootstrap}: {error}") from None
    finally:
        consumer.close()


def json_object(message: bytes | None) -> dict[str, Any]:
    """The JSON object a message holds; empty for anything that is not one (a stranger's bytes)."""
    try:
        data = orjson.loads(message or b"")
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
