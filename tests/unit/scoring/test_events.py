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


AREA = {"type": "area_risk", "event_id": "a1", "ts": "2022-04-01T08:00:00Z", "area": "x", "level": "high",
        "geometry": {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.0], [114.1, 30.1], [114.0, 30.0]]]}}


def _text(obj: dict) -> str:
    return orjson.dumps(obj).decode()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (_text(PING)[:-1] + ',"lat":31.0}', "lat"),  # a number twice
        (_text(PING)[:-1] + ',"person":"p2"}', "person"),  # a string twice
        ('{"ts":5,' + _text(PING)[1:], "ts"),  # the value that lost was not a string
        ('{"lat":{"a":"b"},' + _text(PING)[1:], "lat"),  # nor even a scalar
        (_text(PING)[:-1] + ',"\\u0074s":"2022-04-01T08:15:00Z"}', "ts"),  # the same key, escaped
        (_text(AREA)[:-1] + ',"level":"low"}', "level"),
        (_text(AREA).replace('"type":"Polygon"', '"type":"Polygon","type":"Polygon"'), "type"),  # nested
    ],
    ids=["number", "string", "lost a number", "lost an object", "escaped", "area", "inside geometry"],
)
def test_a_key_given_twice_is_rejected_naming_it(raw: str, key: str) -> None:
    for form in (raw, raw.encode()):
        with pytest.raises(EventError) as caught:
            decode_event(form)
        assert caught.value.kind == "duplicate_key"
        assert caught.value.reason == f"duplicate key: {key!r} is given more than once in an object"


def test_keys_once_each_pass_however_the_strings_are_written() -> None:
    for obj in (PING, {**PING, "accuracy_m": None}, {**PING, "accuracy_m": 5.0}, {**PING, "event_id": "e\u00e9\\\":"},
                {"type": "visit", "event_id": 'v":1', "ts": "2022-04-01T08:15:00Z", "person": "p", "facility": "a:\"b\"",
                 "kind": "diagnosis"}, AREA):
        assert decode_event(orjson.dumps(obj)).event_id == obj["event_id"]
        assert decode_event(_text(obj)).event_id == obj["event_id"]


@pytest.mark.parametrize("field", ["event_id", "facility"])
@pytest.mark.parametrize("char", ["\u0000", "\u001f", "\u007f", "\u0085", "\u200b", "\u200d", "\u202e", "\ufeff",
                                  "\u2028", "\u2029", "\ue000"])
def test_identifiers_with_control_format_separator_or_private_use_characters_are_rejected(field: str, char: str) -> None:
    visit = {"type": "visit", "event_id": "v1", "ts": "2022-04-01T08:15:00Z", "person": "p", "facility": "h",
             "kind": "diagnosis"}
    error = _reason({**visit, field: f"a{char}b"})
    assert error.kind == "invalid_field"
    assert error.reason == f"visit.{field}: must not contain control, format (zero-width), separator or private-use characters"


def test_identifiers_in_any_script_with_spaces_and_punctuation_pass() -> None:
    assert decode_event(orjson.dumps({**PING, "event_id": "事件-1 ünïcode/№:42"})).event_id == "事件-1 ünïcode/№:42"
