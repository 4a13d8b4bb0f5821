"""Replay settles up to the last event of its input, as a stream does when its input ends.

Replay finished at the first ping of the last 15-minute tick, not the last one: a
level change between the two was missing (an 800-resident city: a companion's yellow
that lapsed 14 min before the end), while a worker, settling up to the newest event it
read, published it. Replay is the reference the stream is held to (issue 18).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from scoring.replay import replay_file
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339, parse_rfc3339

RULES = load_rule_set(Path(__file__).resolve().parents[3] / "rules" / "default.yaml")
VISIT_AT = parse_rfc3339("2022-04-01T08:07:30Z")
LAPSE_AT = VISIT_AT + 14 * 86400
"""A fever clinic visit with no test after it lapses 14 days later (08:07:30, inside the 08:00 tick)."""


def _events(ping_times: list[int]) -> list[bytes]:
    visit = {"event_id": "visit-1", "type": "visit", "ts": format_rfc3339(VISIT_AT), "person": "x1",
             "facility": "clinic-1", "kind": "fever_clinic"}
    pings = [
        {"event_id": f"ping-{n}", "type": "ping", "ts": format_rfc3339(at), "person": "x1", "lat": 31.2, "lon": 121.4,
         "source": "gps"}
        for n, at in enumerate(ping_times)
    ]
    return [orjson.dumps(event) for event in [visit, *pings]]


def _timeline(tmp_path: Path, name: str, ping_times: list[int]) -> list[tuple[int, str]]:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"\n".join(_events(ping_times)) + b"\n")
    return [(change.at, change.level) for change in replay_file(path, RULES).timeline]


def test_a_change_after_the_first_ping_of_the_last_tick_is_in_the_timeline(tmp_path: Path) -> None:
    last_tick = [LAPSE_AT - 300, LAPSE_AT + 300]
    assert _timeline(tmp_path, "ends", last_tick) == [(VISIT_AT, "yellow"), (LAPSE_AT, "green")]


def test_the_timeline_up_to_the_last_event_does_not_depend_on_what_follows(tmp_path: Path) -> None:
    last_tick = [LAPSE_AT - 300, LAPSE_AT + 300]
    shorter = _timeline(tmp_path, "ends", last_tick)
    longer = _timeline(tmp_path, "goes-on", last_tick + [LAPSE_AT + 86400])
    assert shorter == [change for change in longer if change[0] <= LAPSE_AT + 300]
