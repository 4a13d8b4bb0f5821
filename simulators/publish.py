"""Publishing event lines to the broker, keyed and routed as DESIGN.md says.

Lines go out exactly as they are (faulty ones included, so malformed lines reach
the pipeline's dead-letter path). Each line is routed by its `type` (pings to the
pings topic; visits and test results to the visits topic; area designations to the
areas topic) and keyed by its `person` (or `area`). A line that does not parse is
routed by whatever `"type"`/`"person"` text it still shows, else to the pings topic
with no key.

Pacing: with a speed factor the stream's clock (the largest event time published
so far) runs that many times faster than the wall clock; `None` means as fast as
the broker takes them.

A line longer than `MAX_MESSAGE_BYTES` is not sent: a broker refuses messages that
large (Apache Kafka's default limit is about 1 MB), and a Kafka client raises on them
where it stands, which stopped a whole file at one line. It is skipped and reported
with its number and reason, and the rest of the file goes out.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from scoring.timeutil import parse_rfc3339
from streams.topics import Topics

_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_]+)"')
_KEY = re.compile(rb'"(?:person|area)"\s*:\s*"([^"]{1,128})"')
_TS = re.compile(rb'"ts"\s*:\s*"([^"]+)"')
_FALLBACK_TYPE = "ping"
_ROLES = ("ping", "visit", "test_result", "area_risk")
# Below Apache Kafka's default message.max.bytes (1,048,588 for a whole batch), with
# room for the key and the batch header; an event is a few hundred bytes.
MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class Route:
    """Where one line goes: topic, key (None when it has none) and event time if readable."""

    topic: str
    key: bytes | None
    ts: int | None


def _event_time(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def route(line: bytes, topics: Topics) -> Route:
    """The topic and key of one event line."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        event = None
    if isinstance(event, dict):
        event_type = event.get("type")
        key = event.get("area") if event_type == "area_risk" else event.get("person")
        topic = topics.for_event(event_type if event_type in _ROLES else _FALLBACK_TYPE)
        return Route(topic, key.encode() if isinstance(key, str) else None, _event_time(event.get("ts")))
    found_type = _TYPE.search(line)
    event_type = found_type.group(1).decode() if found_type else _FALLBACK_TYPE
    found_key = _KEY.search(line)
    found_ts = _TS.search(line)
    return Route(
        topics.for_event(event_type if event_type in _ROLES else _FALLBACK_TYPE),
        found_key.group(1) if found_key else None,
        _event_time(found_ts.group(1).decode(errors="replace")) if found_ts else None,
    )


@dataclass
class Pacer:
    """Holds publishing back so event time advances `speed` times faster than wall time."""

    speed: float | None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _origin: tuple[float, int] | None = None
    _newest: int | None = None

    def wait_for(self, event_time: int | None) -> None:
        """Sleep until an event at `event_time` is due (never for a late or timeless one)."""
        if self.speed is None or event_time is None:
            return
        if self._origin is None:
            self._origin = (self.clock(), event_time)
        if self._newest is not None and event_time <= self._newest:
            return
        self._newest = event_time
        wall_start, event_start = self._origin
        due = wall_start + (event_time - event_start) / self.speed
        remaining = due - self.clock()
        if remaining > 0:
            self.sleep(remaining)


Send = Callable[[str, bytes | None, bytes], None]


@dataclass(frozen=True)
class Skipped:
    """A line that was not sent: its number among the lines given (from 1) and why."""

    line: int
    reason: str


@dataclass
class Publisher:
    """Routes lines to topics and hands them to `send(topic, key, value)`, counting per topic."""

    send: Send
    topics: Topics
    pacer: Pacer
    sent: Counter[str] = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    lines_seen: int = 0
    max_bytes: int = MAX_MESSAGE_BYTES

    def publish(self, lines: Iterable[bytes]) -> int:
        """Publish lines (trailing newlines are not sent; oversized ones are `skipped`); returns how many."""
        count = 0
        for line in lines:
            self.lines_seen += 1
            value = line.rstrip(b"\r\n")
            if not value:
                continue
            if len(value) > self.max_bytes:
                self.skipped.append(
                    Skipped(self.lines_seen, f"{len(value):,} bytes, more than the {self.max_bytes:,} a message may hold")
                )
                continue
            where = route(value, self.topics)
            self.pacer.wait_for(where.ts)
            self.send(where.topic, where.key, value)
            self.sent[where.topic] += 1
            count += 1
        return count

    def publish_chunk(self, lines: pa.Array) -> int:
        """Publish an Arrow array of rendered lines."""
        return self.publish(line.encode() for line in lines.to_pylist())


class KafkaSink:
    """A kafka-python producer tuned for throughput (batched, acknowledged by the leader).

    Deliveries the broker refuses are counted in `failed` with the last error, never
    lost silently. The producer asks brokers not to create missing topics (Apache Kafka
    obeys; check the topics exist before publishing, because the embedded broker does not).
    """

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaProducer

        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="healthcode-simulator",
            acks=1,
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            allow_auto_create_topics=False,
        )
        self.failed = 0
        self.last_error: str | None = None

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one message."""
        self._producer.send(topic, key=key, value=value).add_errback(self._refused)

    def _refused(self, error: Exception) -> None:
        self.failed += 1
        self.last_error = str(error)

    def close(self) -> None:
        """Deliver everything queued, then disconnect."""
        self._producer.flush()
        self._producer.close()


def kafka_publisher(bootstrap: str, topics: Topics, speed: float | None) -> tuple[Publisher, KafkaSink]:
    """A publisher writing to the brokers at `bootstrap`; close the sink when done."""
    sink = KafkaSink(bootstrap)
    return Publisher(sink.send, topics, Pacer(speed)), sink
