"""Every consumed message becomes an event or a dead letter with its reason."""

from __future__ import annotations

import orjson
import pytest

from scoring.events import Ping
from scoring.limits import EventLimits
from streams.deadletter import Rejected
from streams.intake import intake_clock, triage

PING = b'{"type":"ping","event_id":"e1","ts":"2022-04-01T08:15:00Z","person":"p1","lat":30.5,"lon":114.3,"source":"gps"}'
NOW = 1_648_800_000  # 2022-04-01T08:00:00Z: the intake clock of these tests
DAY = 86_400


def _with(**fields: object) -> bytes:
    return orjson.dumps({**orjson.loads(PING), **fields})


def _area(level: str, ring: list[list[float]]) -> bytes:
    return orjson.dumps({"type": "area_risk", "event_id": "a1", "ts": "2022-04-01T08:00:00Z", "area": "x",
                         "level": level, "geometry": {"type": "Polygon", "coordinates": [ring]}})


def _square(lon: float, lat: float, side: float) -> list[list[float]]:
    return [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]


def test_a_valid_event_on_its_topic_passes() -> None:
    assert isinstance(triage(PING, "hc.pings", 0, 1, now=NOW), Ping)


def test_an_event_on_the_wrong_topic_is_rejected() -> None:
    outcome = triage(PING, "hc.visits", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "wrong_topic"


def test_a_dead_letter_keeps_the_original_bytes_position_and_reason() -> None:
    outcome = triage(b"\xff\xfe garbage", "hc.pings", 3, 42, key=b"p1", now=NOW)
    assert isinstance(outcome, Rejected)
    back = Rejected.from_bytes(outcome.to_bytes())
    assert back == outcome
    assert (back.raw, back.partition, back.offset, back.kind) == (b"\xff\xfe garbage", 3, 42, "invalid_json")


def test_a_tombstone_is_rejected_not_crashed_on() -> None:
    outcome = triage(None, "hc.pings", 0, 7, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "empty"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (_with(ts="9999-12-31T00:00:00Z"), "ts: 9999-12-31T00:00:00Z is more than 1d after the clock (2022-04-01T08:00:00Z)"),
        (_with(ts="0001-01-01T00:00:00Z"), "ts: 0001-01-01T00:00:00Z is before 2000-01-01T00:00:00Z"),
        (_with(ts="2022-04-02T08:00:01Z"), "ts: 2022-04-02T08:00:01Z is more than 1d after the clock"),
        (b'{"type":"test_result","event_id":"t1","ts":"2022-04-01T09:00:00Z","person":"p1",'
         b'"sampled_at":"0001-01-01T00:00:00Z","test":"pcr","result":"positive"}', "sampled_at: 0001-01-01T00:00:00Z is before"),
    ],
)
def test_an_event_time_out_of_range_is_dead_lettered_with_the_bound_it_broke(raw: bytes, fragment: str) -> None:
    topic = "hc.visits" if b"test_result" in raw else "hc.pings"
    outcome = triage(raw, topic, 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "time_out_of_range"
    assert fragment in outcome.reason


def test_event_times_up_to_a_day_ahead_of_the_clock_pass_and_the_bounds_are_configurable() -> None:
    assert isinstance(triage(_with(ts="2022-04-02T08:00:00Z"), "hc.pings", 0, 1, now=NOW), Ping)
    strict = EventLimits(earliest=NOW, ahead_s=0)
    assert isinstance(triage(_with(ts="2022-04-01T08:00:00Z"), "hc.pings", 0, 1, now=NOW, limits=strict), Ping)
    early = triage(_with(ts="2022-04-01T07:59:59Z"), "hc.pings", 0, 1, now=NOW, limits=strict)
    late = triage(_with(ts="2022-04-01T08:00:01Z"), "hc.pings", 0, 1, now=NOW, limits=strict)
    assert isinstance(early, Rejected) and isinstance(late, Rejected)


def test_the_intake_clock_is_the_time_the_log_took_the_message_capped_by_the_wall_clock() -> None:
    # A rebuild reads the message again later: the verdict must not change with the day it runs.
    assert intake_clock(NOW * 1000, wall=NOW + 30 * DAY) == NOW
    assert intake_clock((NOW + 30 * DAY) * 1000, wall=NOW) == NOW  # a producer claiming a time ahead
    assert intake_clock(-1, wall=NOW) == intake_clock(None, wall=NOW) == NOW  # no timestamp given


def test_a_large_area_is_dead_lettered_before_any_cell_is_filled() -> None:
    outcome = triage(_area("high", _square(100.0, 20.0, 10.0)), "hc.areas", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "area_too_large"
    assert "geometry: covers up to 1,1" in outcome.reason and "km2, at most 3,000" in outcome.reason


def test_an_area_of_too_many_vertices_is_dead_lettered() -> None:
    ring = [[114.3 + i * 1e-5, 30.5 + (i % 2) * 1e-5] for i in range(2000)] + [[114.3, 30.4], [114.3, 30.5]]
    outcome = triage(_area("medium", ring), "hc.areas", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "area_too_large"
    assert outcome.reason == "geometry: 2,002 positions, at most 1,000"


def test_a_low_designation_fills_no_cells_and_may_be_any_size() -> None:
    assert not isinstance(triage(_area("low", _square(100.0, 20.0, 10.0)), "hc.areas", 0, 1, now=NOW), Rejected)


def test_a_key_given_twice_is_dead_lettered_naming_it() -> None:
    raw = PING[:-1] + b',"lat":31.0}'
    outcome = triage(raw, "hc.pings", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "duplicate_key"
    assert outcome.reason == "duplicate key: 'lat' is given more than once in an object"


@pytest.mark.parametrize("bad", ["e\u0000", "e\u200b1", "\ufeffe1", "e\u202e1", "e\ue0001", "e\u20281", "e\u0007"])
def test_an_event_id_with_an_invisible_or_control_character_is_dead_lettered(bad: str) -> None:
    outcome = triage(_with(event_id=bad), "hc.pings", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "invalid_field"
    assert outcome.reason.startswith("ping.event_id: must not contain control")


def test_a_reason_quoting_input_escapes_its_control_characters() -> None:
    outcome = triage(PING[:-1] + b',"x\\u001b[31mred\\u0007":1}', "hc.pings", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "unknown_field"
    assert outcome.reason == "ping.x\\x1b[31mred\\x07: unknown field"
    assert Rejected.from_bytes(outcome.to_bytes()).reason == outcome.reason
    assert all(char.isprintable() for char in Rejected(b"", "t", 0, 0, "k", "a\u0000b\u200bc\n").reason)


def test_a_sliver_of_no_area_but_long_edges_is_dead_lettered() -> None:
    sliver = [[100.0, 20.0], [110.0, 30.0], [110.0001, 30.0], [100.0001, 20.0], [100.0, 20.0]]
    outcome = triage(_area("high", sliver), "hc.areas", 0, 1, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.kind == "area_too_large"
    assert outcome.reason.startswith("geometry: edges 2,") and outcome.reason.endswith("km long in all, at most 1,000")
