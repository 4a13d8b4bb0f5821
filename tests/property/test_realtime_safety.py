"""Bad news at once, good news when certain (issue 13), over random events, arrival orders and delays.

A few persons ping around two nearby places for three hours; some test positive (a
correcting negative PCR on the same sample may follow), some visit a fever clinic or
are discharged; a bystander pings far away fifteen days later, so every reason lapses
within the events' time. Each event reaches the worker after a random delay shorter than the
allowed lateness, so events arrive out of event-time order. A `Step` (through
`StepDriver`, no Kafka) takes them turn by turn. Checked:

(a) the fold of every published record (each superseding from its moment on) is
    exactly replay's timeline of the same events, its lines where only the reasons change
    (a second reason at the same level, one lapsing while the level stays) included;
(b) after every turn, no person is shown, at the moment of any own event already
    received (a test result, a visit), a lower level than those received own events
    alone give there: bad news is shown as soon as it arrives;
(c) an escalation is withdrawn only when replay withdraws it too: every record that raised a
    person's level at its moment raised it to no more than replay has there, unless a test
    result or visit dated at or before that moment arrived after it (the stream had to show
    what it had received, (b); a correcting negative known earlier may come later); and no
    round of turns lowers a level already shown, at a moment the received events reach,
    below what replay has there (no flip-flop).
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codes import Algorithm, SigningKey, generate_signing_key
from scoring.assess import assess
from scoring.events import Ping, TestResult, Visit, decode_event, encode_event
from scoring.replay import replay_file
from scoring.rules import LEVEL_CODE, RuleSet, load_rule_set
from scoring.state import apply, new_state
from scoring.timeline import Line, fold, level_at, record_key
from scoring.timeutil import to_epoch
from streams.step import WorkerConfig
from streams.testing import MemoryLog, StepDriver, settle
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
TOPICS = Topics(prefix="rt.")
PARTITIONS = 2
WALL = 1_700_000_000.0
START = 1_650_000_000 - 1_650_000_000 % 900
LATENESS = 600
PLACES = ((31.2304, 121.4737), (31.2310, 121.4741), (31.2704, 121.5137))
PERSONS = ("p-a", "p-b", "p-c", "p-d")

from hypothesis import Phase
safety = settings(phases=[Phase.explicit, Phase.generate], max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=1)
def _rules() -> RuleSet:
    return load_rule_set(RULES)


@lru_cache(maxsize=1)
def _key() -> SigningKey:
    return generate_signing_key(Algorithm.EDDSA, int(WALL) - 3600, int(WALL) + 30 * 86_400)


def _moment(at: int) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """(arrival key, event line): events of a few persons, each with a delay under the lateness."""
    events: list[bytes] = []
    for person in PERSONS:
        place = draw(st.sampled_from(PLACES))
        first = draw(st.integers(0, 90))
        for minute in range(first, first + draw(st.integers(0, 60)), 5):
            if draw(st.integers(0, 9)) == 0:
                place = draw(st.sampled_from(PLACES))
            events.append(encode_event(Ping(event_id=f"{person}-ping-{minute}", ts=_moment(START + 60 * minute),
                                            person=person, lat=place[0], lon=place[1], source="gps")))
        for index in range(draw(st.integers(0, 2))):
            at = START + 60 * draw(st.integers(0, 180))
            kind = draw(st.sampled_from(["positive", "correction", "fever_clinic", "diagnosis", "recovery"]))
            if kind in ("positive", "correction"):
                sampled = START - 3600
                events.append(encode_event(TestResult(
                    event_id=f"{person}-test-{index}", ts=_moment(at), person=person, sampled_at=_moment(sampled),
                    test="pcr", result="positive" if kind == "positive" else "negative")))
            else:
                events.append(encode_event(Visit(event_id=f"{person}-visit-{index}", ts=_moment(at), person=person,
                                                 facility="h", kind=kind)))
    # A bystander far away fifteen days on: event time passes every lapse (a companion's 7 days, a close
    # contact's or fever clinic's 14), so the timelines compared end with the reasons lapsing too.
    events.append(encode_event(Ping(event_id="p-z-later", ts=_moment(START + 15 * 86_400), person="p-z",
                                    lat=PLACES[2][0] + 1, lon=PLACES[2][1], source="gps")))
    delays = draw(st.lists(st.integers(0, LATENESS - 1), min_size=len(events), max_size=len(events)))
    return sorted(((to_epoch(decode_event(line).ts) + delay, line) for delay, line in zip(delays, events)),
                  key=lambda item: item[0])


def _config() -> WorkerConfig:
    return WorkerConfig(bootstrap="memory", topics=TOPICS, group="g", rules=_rules(), keys=[_key()],
                        partitions=PARTITIONS, lateness_s=LATENESS, idle_s=5.0, clock=lambda: WALL,
                        stages=False)  # the unsplit step (staged escalations: tests/unit/streams/test_region_stages.py)


def _records(log: MemoryLog, seen: dict[int, int]) -> list[dict]:
    """Code records published since last asked (`seen`: how far each partition was read)."""
    found = []
    for partition in range(PARTITIONS):
        messages = log.logs[(TOPICS.codes, partition)]
        found += [orjson.loads(message.value or b"") for message in messages[seen.get(partition, 0):]]
        seen[partition] = len(messages)
    return [record for record in found if record.get("type") == "code"]


def _replayed(lines: list[bytes]) -> dict[str, list[Line]]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "events.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        timeline = replay_file(path, _rules()).timeline
    by_person: dict[str, list[Line]] = {}
    for change in timeline:
        record = change.to_json()
        record["assessed_at"] = record.pop("at")
        fold(by_person.setdefault(change.person, []), Line(record_key(record), record))
    return by_person


def _justified(received: list[bytes], person: str) -> list[tuple[int, str]]:
    """(moment, level) at each received own event of `person`, from those own events alone."""
    state = new_state(person)
    own = [event for event in map(decode_event, received)
           if isinstance(event, (TestResult, Visit)) and event.person == person]
    for event in own:
        state = apply(state, event, _rules())
    return [(to_epoch(event.ts), assess(state, _rules(), to_epoch(event.ts)).level) for event in own]


def _breakpoints(*timelines: list[Line]) -> list[int]:
    return sorted({line.at for timeline in timelines for line in timeline})


@safety
@given(histories())
def test_early_escalations_are_safe_and_the_published_timeline_ends_as_replays(
    history: list[tuple[int, bytes]],
) -> None:
    lines = [line for _, line in history]
    replayed = _replayed(lines)
    log = MemoryLog(TOPICS, PARTITIONS)
    drivers = [StepDriver(log, _config(), frozenset({p}), name=f"w{p}") for p in range(PARTITIONS)]
    shown: dict[str, list[Line]] = {}
    seen: dict[int, int] = {}
    escalated: list[tuple[str, int, str, int]] = []
    """(person, moment, level, how many events had been received) of every record that raised a level."""
    now = 0.0
    received: list[bytes] = []

    def read_new_records() -> None:
        """Fold what one round of turns published; (c) compares the timelines before and after it
        (a correction is a run of records sent together: a reader stopping inside one sees a part)."""
        before = {person: list(lines) for person, lines in shown.items()}
        for record in _records(log, seen):
            lines = shown.setdefault(record["person"], [])
            line = Line(record_key(record), record)
            raised = LEVEL_CODE[line.level] > LEVEL_CODE[level_at(lines, line.at)]
            fold(lines, line)
            if raised:
                escalated.append((record["person"], line.at, line.level, len(received)))
        reached = max(to_epoch(decode_event(line).ts) for line in received)
        for person, lines in shown.items():
            truth, earlier = replayed.get(person, []), before.get(person, [])
            for moment in [m for m in _breakpoints(earlier, lines, truth) if m <= reached]:
                now_level, then_level = LEVEL_CODE[level_at(lines, moment)], LEVEL_CODE[level_at(earlier, moment)]
                assert now_level >= then_level or now_level >= LEVEL_CODE[level_at(truth, moment)], (
                    f"(c) {person} lowered to {level_at(lines, moment)} at {moment} where replay has "
                    f"{level_at(truth, moment)}")

    # Arrivals in order of event time + delay, a few per turn; the clock moves 0.1 s a turn.
    for start in range(0, len(history), 3):
        batch = history[start:start + 3]
        log.publish([line for _, line in batch])
        received += [line for _, line in batch]
        for driver in drivers:
            driver.turn(now, WALL)
        for driver in drivers:  # case notices and progress sent this turn reach everyone
            driver.turn(now, WALL)
        read_new_records()
        for person in PERSONS:
            for moment, level in _justified(received, person):
                assert LEVEL_CODE[level_at(shown.get(person, []), moment)] >= LEVEL_CODE[level], (
                    f"(b) {person} shown {level_at(shown.get(person, []), moment)} at {moment}, "
                    f"its received own events give {level}")
        now += 0.1

    newest = max(to_epoch(decode_event(line).ts) for line in lines)
    settle(drivers, newest, WALL, start=now, step_s=6.0)
    read_new_records()
    final = {person: [line.key for line in timeline] for person, timeline in shown.items() if timeline}
    assert final == {person: [line.key for line in timeline] for person, timeline in replayed.items() if timeline}, \
        "(a) the published timeline is not replay's"
    for person, moment, level, count in escalated:
        later = [event for event in map(decode_event, received[count:]) if not isinstance(event, Ping)]
        assert LEVEL_CODE[level_at(replayed.get(person, []), moment)] >= LEVEL_CODE[level] or any(
            to_epoch(event.ts) <= moment for event in later), (
            f"(c) {person} was raised to {level} at {moment}, replay has {level_at(replayed.get(person, []), moment)}")
