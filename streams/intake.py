"""Intake: every consumed message is either a valid event or a `Rejected` with its reason."""

from __future__ import annotations

from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event
from scoring.limits import EventLimits, limit_breach
from streams.deadletter import Rejected

Event = Ping | Visit | TestResult | AreaRisk


def triage(
    raw: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None = None,
    *,
    now: int,
    limits: EventLimits = EventLimits(),
) -> Event | Rejected:
    """Decode one message; anything that is not a valid v1 event becomes a `Rejected`.

    Events on the wrong topic (a ping on the visits topic, say) are rejected too:
    the key and partition they arrived with would be wrong for them. So are events
    beyond `limits` (`scoring.limits`): times out of range, judged at `now` (the
    intake clock, epoch seconds; see `intake_clock`), and areas too large to fill.
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
    breach = limit_breach(event, limits, now)
    if breach is not None:
        return Rejected(raw, topic, partition, offset, breach.kind, breach.reason, key)
    return event


def intake_clock(appended_ms: int | None, wall: float) -> int:
    """The clock a message's event times are judged at: when the log took it, if that is not ahead of `wall`.

    A rebuild reads every message again, later: judged by the wall clock then, an event
    refused the first time could be taken the second. The message's own timestamp
    gives the same verdict on every read; `wall` caps a producer that sets it ahead.
    """
    wall_s = int(wall)
    if appended_ms is None or appended_ms <= 0:
        return wall_s
    return min(appended_ms // 1000, wall_s)


_ROLE = {"ping": "pings", "visit": "visits", "test_result": "visits", "area_risk": "areas"}
