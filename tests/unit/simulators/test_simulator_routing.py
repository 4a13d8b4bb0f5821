"""Routing, keying and pacing of published lines (the broker itself is in the integration test)."""

from __future__ import annotations

from simulators.publish import Pacer, Publisher, route
from streams.topics import Topics

TOPICS = Topics("t.")
PING = b'{"event_id":"e1-1","type":"ping","ts":"2022-04-01T00:00:00Z","person":"p000001","lat":30.5,"lon":114.3,"source":"gps"}'
RESULT = (
    b'{"event_id":"e1-2","type":"test_result","ts":"2022-04-01T01:00:00Z","person":"p000002",'
    b'"sampled_at":"2022-03-31T20:00:00Z","test":"pcr","result":"negative"}'
)
AREA = b'{"event_id":"e1-3","type":"area_risk","ts":"2022-04-01T02:00:00Z","area":"district-03","level":"high","geometry":{}}'


def test_events_go_to_the_topic_of_their_type_keyed_by_person_or_area() -> None:
    assert route(PING, TOPICS) == route(PING, TOPICS)
    assert (route(PING, TOPICS).topic, route(PING, TOPICS).key) == ("t.pings", b"p000001")
    assert (route(RESULT, TOPICS).topic, route(RESULT, TOPICS).key) == ("t.visits", b"p000002")
    assert (route(AREA, TOPICS).topic, route(AREA, TOPICS).key) == ("t.areas", b"district-03")


def test_a_truncated_line_still_goes_where_its_visible_type_and_person_say() -> None:
    cut = RESULT[:90]
    where = route(cut, TOPICS)
    assert (where.topic, where.key) == ("t.visits", b"p000002")


def test_a_line_with_nothing_readable_goes_to_pings_without_a_key() -> None:
    where = route(b"\x00garbage", TOPICS)
    assert (where.topic, where.key, where.ts) == ("t.pings", None, None)


def test_an_unknown_type_goes_to_pings_where_the_pipeline_dead_letters_it() -> None:
    where = route(b'{"type":"weather","person":"p1"}', TOPICS)
    assert (where.topic, where.key) == ("t.pings", b"p1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacing_runs_event_time_speed_times_faster_than_the_wall_clock() -> None:
    clock = FakeClock()
    pacer = Pacer(60.0, clock=clock, sleep=clock.sleep)
    pacer.wait_for(0)
    pacer.wait_for(600)
    pacer.wait_for(300)
    pacer.wait_for(1_200)
    assert clock.slept == [10.0, 10.0]


def test_max_speed_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    for moment in (0, 3_600, 7_200):
        pacer.wait_for(moment)
    assert clock.slept == []


def test_publisher_sends_lines_as_they_are_and_counts_per_topic() -> None:
    sent: list[tuple[str, bytes | None, bytes]] = []
    publisher = Publisher(lambda topic, key, value: sent.append((topic, key, value)), TOPICS, Pacer(None))
    count = publisher.publish([PING + b"\n", b"\n", AREA + b"\n", b"{broken\n"])
    assert count == 3
    assert sent == [("t.pings", b"p000001", PING), ("t.areas", b"district-03", AREA), ("t.pings", None, b"{broken")]
    assert publisher.sent == {"t.pings": 2, "t.areas": 1}
