"""Event contract v1: what is accepted, and the precise reason for what is not."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from scoring.events import AreaRisk, EventError, Ping, TestResult, Visit, decode_event, encode_event, event_json_schema

PING = {"type": "ping", "event_id": "e1", "ts": "2022-04-01T08:15:00Z", "person": "p_1-A",
        "lat": 30.59, "lon": 114.30, "source": "gps"}
SQUARE = {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.0], [114.1, 30.1], [114.0, 30.0]]]}


def _reason(obj: object) -> EventError:
    with pytest.raises(EventError) as caught:
        decode_event(orjson.dumps(obj))
    return caught.value


def test_each_type_decodes_to_its_model() -> None:
    assert isinstance(decode_event(orjson.dumps(PING)), Ping)
    visit = {"type": "visit", "event_id": "v", "ts": "2022-04-01T00:00:00Z", "person": "p1",
             "facility": "h1", "kind": "diagnosis"}
    assert isinstance(decode_event(orjson.dumps(visit)), Visit)
    result = {"type": "test_result", "event_id": "t", "ts": "2022-04-02T00:00:00Z", "person": "p1",
              "sampled_at": "2022-04-01T00:00:00Z", "test": "pcr", "result": "positive"}
    assert isinstance(decode_event(orjson.dumps(result)), TestResult)
    area = {"type": "area_risk", "event_id": "a", "ts": "2022-04-01T00:00:00Z", "area": "d1", "level": "high",
            "geometry": SQUARE, "valid_until": "2022-04-08T00:00:00Z"}
    assert isinstance(decode_event(orjson.dumps(area)), AreaRisk)


def test_times_with_an_offset_are_normalised_to_utc() -> None:
    event = decode_event(orjson.dumps({**PING, "ts": "2022-04-01T16:15:00+08:00"}))
    assert event.ts == datetime(2022, 4, 1, 8, 15, tzinfo=timezone.utc)


def test_encoding_round_trips_with_z_times() -> None:
    event = decode_event(orjson.dumps(PING))
    raw = encode_event(event)
    assert b'"ts":"2022-04-01T08:15:00Z"' in raw
    assert decode_event(raw) == event


@pytest.mark.parametrize(
    ("change", "kind", "fragment"),
    [
        ({"name": "Zhang San"}, "unknown_field", "ping.name: unknown field"),
        ({"lat": 90.5}, "invalid_field", "ping.lat: Input should be less than or equal to 90"),
        ({"lon": -181}, "invalid_field", "ping.lon"),
        ({"lat": "30.5"}, "invalid_field", "ping.lat: Input should be a valid number"),
        ({"ts": "2022-04-01T08:15:00"}, "invalid_field", "ping.ts: Input should have timezone info"),
        ({"event_id": ""}, "invalid_field", "ping.event_id: String should have at least 1 character"),
        ({"event_id": "x" * 65}, "invalid_field", "ping.event_id: String should have at most 64 characters"),
        ({"person": "Zhang San"}, "invalid_field", "ping.person: String should match pattern"),
        ({"person": "p" * 65}, "invalid_field", "ping.person"),
        ({"source": "satellite"}, "invalid_field", "ping.source"),
        ({"type": "hug"}, "unknown_type", "type: must be one of ping, visit, test_result, area_risk"),
    ],
)
def test_a_bad_field_is_rejected_with_its_path_and_problem(change: dict, kind: str, fragment: str) -> None:
    error = _reason({**PING, **change})
    assert error.kind == kind
    assert fragment in error.reason


def test_a_missing_field_is_named() -> None:
    error = _reason({k: v for k, v in PING.items() if k != "ts"})
    assert "ping.ts: Field required" in error.reason


def test_non_json_and_non_objects_are_rejected() -> None:
    with pytest.raises(EventError) as caught:
        decode_event(b"{not json")
    assert caught.value.kind == "invalid_json"
    assert _reason([1, 2]).kind == "not_an_object"


def test_a_result_cannot_be_known_before_its_sample_is_taken() -> None:
    error = _reason({"type": "test_result", "event_id": "t", "ts": "2022-04-01T00:00:00Z", "person": "p1",
                     "sampled_at": "2022-04-02T00:00:00Z", "test": "pcr", "result": "positive"})
    assert "sampled_at is after ts" in error.reason


def test_an_area_ring_must_be_closed_and_end_after_it_starts() -> None:
    open_ring = {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.0], [114.1, 30.1], [114.0, 30.1]]]}
    base = {"type": "area_risk", "event_id": "a", "ts": "2022-04-01T00:00:00Z", "area": "d1", "level": "high"}
    assert "closed" in _reason({**base, "geometry": open_ring}).reason
    assert "valid_until must be after ts" in _reason(
        {**base, "geometry": SQUARE, "valid_until": "2022-03-01T00:00:00Z"}
    ).reason


def test_the_json_schema_is_a_union_of_the_four_types() -> None:
    schema = event_json_schema()
    assert set(schema["discriminator"]["mapping"]) == {"ping", "visit", "test_result", "area_risk"}
