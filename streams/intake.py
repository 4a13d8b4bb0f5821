"""Intake: every consumed message is either a valid event or a `Rejected` with its reason."""

from __future__ import annotations

from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event
from streams.deadletter import Rejected

Event = Ping | Visit | TestResult | AreaRisk


def triage(raw: bytes | None, topic: str, partition: int, offset: int, key: bytes | None = None) -> Event | Rejected:
    """Decode one message; anything that is not a valid v1 event becomes a `Rejected`.

    Events on the wrong topic (a ping on the visits topic, say) are rejected too:
    the key and partition they arrived with would be wrong for them.
    """
    if raw is None:
        return Rejected(b"", topic, partition, offset, "empty", "message has no value (tombstone)", key)
    try:
        event = decode_event(raw)
    except EventError as error:
        return Rejected(raw, topic, partition, offset, error.kind, error.reason, key)
    expected_role = _ROLE[event.type]
    if not topic.endswith(expected_role):
        return Rejected(
            raw, topic, partition, offset, "wrong_topic", f"a {event.type} event belongs on the {expected_role} topic", key
        )
    return event


_ROLE = {"ping": "pings", "visit": "visits", "test_result": "visits", "area_risk": "areas"}
