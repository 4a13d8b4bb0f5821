"""Every consumed message becomes an event or a dead letter with its reason."""

from __future__ import annotations

from scoring.events import Ping
from streams.deadletter import Rejected
from streams.intake import triage

PING = b'{"type":"ping","event_id":"e1","ts":"2022-04-01T08:15:00Z","person":"p1","lat":30.5,"lon":114.3,"source":"gps"}'


def test_a_valid_event_on_its_topic_passes() -> None:
    assert isinstance(triage(PING, "hc.pings", 0, 1), Ping)


def test_an_event_on_the_wrong_topic_is_rejected() -> None:
    outcome = triage(PING, "hc.visits", 0, 1)
    assert isinstance(outcome, Rejected) and outcome.kind == "wrong_topic"


def test_a_dead_letter_keeps_the_original_bytes_position_and_reason() -> None:
    outcome = triage(b"\xff\xfe garbage", "hc.pings", 3, 42, key=b"p1")
    assert isinstance(outcome, Rejected)
    back = Rejected.from_bytes(outcome.to_bytes())
    assert back == outcome
    assert (back.raw, back.partition, back.offset, back.kind) == (b"\xff\xfe garbage", 3, 42, "invalid_json")


def test_a_tombstone_is_rejected_not_crashed_on() -> None:
    outcome = triage(None, "hc.pings", 0, 7)
    assert isinstance(outcome, Rejected) and outcome.kind == "empty"
