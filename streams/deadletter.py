"""The dead-letter topic: every rejected message goes there with its reason, and is counted.

Consumers build a `Rejected` and hand it to `send_dead_letter` (sync producers such
as kafka-python's) or `asend_dead_letter` (async senders: aiokafka, Faust topics).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from prometheus_client import Counter

from scoring.events import printable

DEAD_LETTERED = Counter(
    "healthcode_dead_lettered",
    "Messages sent to the dead-letter topic, by source topic and kind of reason",
    ["topic", "kind"],
)


@dataclass(frozen=True)
class Rejected:
    """A message that could not be used: where it came from and precisely why."""

    raw: bytes
    topic: str
    partition: int
    offset: int
    kind: str
    """A short category (`invalid_json`, `unknown_field`, ...) used as the metric label."""
    reason: str
    """The precise, human-readable reason."""
    key: bytes | None = None

    def __post_init__(self) -> None:
        # Reasons quote input; whoever reads the topic must not get its control characters raw.
        object.__setattr__(self, "reason", printable(self.reason))

    def to_bytes(self) -> bytes:
        """The dead-letter message: original bytes (base64), source position and reason."""
        return orjson.dumps(
            {
                "source_topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key_b64": base64.b64encode(self.key).decode() if self.key is not None else None,
                "value_b64": base64.b64encode(self.raw).decode(),
                "kind": self.kind,
                "reason": self.reason,
            }
        )

    @staticmethod
    def from_bytes(message: bytes) -> "Rejected":
        """Read a dead-letter message back (operators and tests)."""
        data = orjson.loads(message)
        key = data.get("key_b64")
        return Rejected(
            raw=base64.b64decode(data["value_b64"]),
            topic=data["source_topic"],
            partition=data["partition"],
            offset=data["offset"],
            kind=data["kind"],
            reason=data["reason"],
            key=base64.b64decode(key) if key is not None else None,
        )


def read_letter(message: bytes) -> Rejected | None:
    """The dead letter a message holds; None for anything else on the topic (a worker's fence)."""
    try:
        return Rejected.from_bytes(message)
    except (ValueError, KeyError, TypeError, AttributeError):  # AttributeError: JSON that is not an object
        return None


class SyncProducer(Protocol):
    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...


def send_dead_letter(producer: SyncProducer, dead_letter_topic: str, rejected: Rejected) -> None:
    """Send `rejected` to the dead-letter topic (keyed by its source topic) and count it."""
    producer.send(dead_letter_topic, value=rejected.to_bytes(), key=rejected.topic.encode())
    DEAD_LETTERED.labels(rejected.topic, rejected.kind).inc()


async def asend_dead_letter(
    send: Callable[[str, bytes, bytes], Awaitable[Any]], dead_letter_topic: str, rejected: Rejected
) -> None:
    """The async twin for aiokafka/Faust senders: `send(topic, key, value)`."""
    await send(dead_letter_topic, rejected.topic.encode(), rejected.to_bytes())
    DEAD_LETTERED.labels(rejected.topic, rejected.kind).inc()
