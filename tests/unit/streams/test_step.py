"""The worker's decisions with no broker: a `Step` driven through an in-memory log, as the Faust shell drives it."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from codes import SigningKey
from scoring.events import Ping, TestResult, Visit, encode_event
from scoring.replay import ReplayResult, replay_file
from scoring.rules import load_rule_set
from scoring.timeline import TIMELINE_VERSION
from scoring.timeutil import format_rfc3339
from simulators.config import FaultConfig, SimulationConfig
from streams.codes_reader import distinct_changes
from streams.deadletter import read_letter
from streams.step import Known, Record, Step, WorkerConfig, WorkerView, partition_of
from scoring.timeline import record_key
from streams.resume import restored
from streams.snapshots import Unusable, unusable
from streams.testing import MemoryLog, StepDriver, assert_each_record_changes_what_is_shown, settle
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
PARTITIONS = 3
TOPICS = Topics(prefix="t.")
WALL = 1_700_000_000.0
DAY = 86_400
CITY = SimulationConfig(residents=160, days=3, seed=5, faults=FaultConfig(share=0.01))


@pytest.fixture(scope="module")
def city_config() -> SimulationConfig:
    """A small city with 1% injected faults."""
    return CITY


def _config(key: SigningKey, **overrides) -> WorkerConfig:
    settings = dict(bootstrap="memory", topics=TOPICS, group="g", rules=load_rule_set(RULES), keys=[key],
                    partitions=PARTITIONS, lateness_s=2 * DAY, idle_s=2.0, clock=lambda: WALL,
                    stages=False)  # these specify the unsplit step, which reads every ping itself
    settings.update(overrides)
    return WorkerConfig(**settings)


def _published(city: Path) -> MemoryLog:
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(city.read_bytes().splitlines())
    return log


def _codes(log: MemoryLog) -> list[dict]:
    return log.codes()


def _timeline(log: MemoryLog) -> list[dict]:
    return log.timeline()


def _last_change(replayed: ReplayResult) -> int:
    return max(change.at for change in replayed.timeline)


def test_one_worker_owning_every_partition_sends_exactly_the_replay_timeline(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    driver = StepDriver(log, _config(signing_key), frozenset(range(PARTITIONS)))
    settle([driver], _last_change(replayed), WALL)
    assert replayed.timeline, "the city must restrict someone"
    assert_each_record_changes_what_is_shown(_codes(log))
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]


def test_two_workers_splitting_the_partitions_each_code_only_their_own_persons_and_together_equal_replay(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    config = _config(signing_key)
    first = StepDriver(log, config, frozenset({0}), name="first")
    second = StepDriver(log, config, frozenset({1, 2}), name="second")
    settle([first, second], _last_change(replayed), WALL)
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]
    for driver in (first, second):
        assert {partition_of(person, PARTITIONS) for person in driver.view.codes} <= driver.owned


def test_no_reference_a_code_record_cites_is_one_a_case_notice_names_its_case_by(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    # A case notice names the case's pseudonym beside its reference (presence needs it): a contact's
    # record citing that reference would tie the contact to the case for anyone reading both topics.
    log = _published(city)
    driver = StepDriver(log, _config(signing_key, reference_secret=bytes(range(32))), frozenset(range(PARTITIONS)))
    settle([driver], _last_change(replayed), WALL)
    notices = [orjson.loads(value) for value in log.values(TOPICS.cases)]
    named = {notice["case_ref"] for notice in notices if notice.get("type") in ("case", "early_case")}
    cited = [item["source"] for record in _codes(log) for reason in record["reasons"]
             for item in reason["evidence"] if item.get("signal") in ("close_contact", "companion")]
    assert named and cited, "the city must have cases with contacts"
    assert not named & set(cited)
    assert len(set(cited)) < len(cited), "a source still groups the records one case caused"
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]


def test_every_malformed_event_is_dead_lettered_once_with_its_position_by_one_worker(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    config = _config(signing_key)
    drivers = [StepDriver(log, config, frozenset({p}), name=f"w{p}") for p in range(PARTITIONS)]
    settle(drivers, _last_change(replayed), WALL)
    letters = [read_letter(value) for value in log.values(TOPICS.dead_letter)]
    positions = [(letter.topic, letter.partition, letter.offset) for letter in letters]
    assert letters and len(positions) == len(set(positions))
    faults = [orjson.loads(line) for line in (city.parent / "faults.jsonl").read_bytes().splitlines()]
    assert len(letters) == sum(1 for f in faults if f["kind"] in ("malformed_json", "wrong_type", "unknown_field"))
    for letter in letters:
        assert log.logs[(letter.topic, letter.partition)][letter.offset].value == letter.raw


def test_a_worker_started_over_on_the_same_log_sends_nothing_again(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    config = _config(signing_key)
    settle([StepDriver(log, config, frozenset(range(PARTITIONS)))], _last_change(replayed), WALL)
    codes, letters = len(log.values(TOPICS.codes)), len(log.values(TOPICS.dead_letter))
    again = StepDriver(log, config, frozenset(range(PARTITIONS)), name="again")
    settle([again], _last_change(replayed), WALL)
    assert (len(log.values(TOPICS.codes)), len(log.values(TOPICS.dead_letter))) == (codes, letters)
    assert again.view.codes and all(person in again.view.codes for person in {c.person for c in replayed.timeline})


def test_a_worker_that_dies_half_way_is_replaced_with_nothing_lost_or_sent_twice(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    config = _config(signing_key)
    dying = StepDriver(log, config, frozenset(range(PARTITIONS)), name="dying")
    for turn in range(1000):
        output = dying.decide(float(turn), WALL)
        codes = [index for index, message in enumerate(output.messages) if message.topic == TOPICS.codes]
        if len(codes) > 1:
            log.send(output.messages[: codes[len(codes) // 2]])  # it dies while sending
            break
        log.send(output.messages)
    assert 0 < len(_codes(log)) < len(replayed.timeline), "the first worker must die mid-stream"
    settle([StepDriver(log, config, frozenset(range(PARTITIONS)), name="successor")], _last_change(replayed), WALL)
    assert_each_record_changes_what_is_shown(_codes(log))
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]


def test_a_worker_resumed_from_a_snapshot_taken_mid_stream_sends_what_one_going_on_sends(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    config, everything, last = _config(signing_key), frozenset(range(PARTITIONS)), _last_change(replayed)

    def run(driver: StepDriver, turn: int, until: Callable[[], bool]) -> int:
        # A few hundred records a partition per turn: the stream goes on for many turns.
        while not until():
            driver.turn(float(turn), WALL, limit=300)
            turn += 1
        return turn

    straight_log, resumed_log = _published(city), _published(city)
    straight = StepDriver(straight_log, config, everything, name="w")
    run(straight, 0, lambda: straight.step.final_at >= last)
    dying = StepDriver(resumed_log, config, everything, name="w")
    turn = run(dying, 0, lambda: bool(_codes(resumed_log)))
    snapshot, codes_then = dying.snapshot("test"), len(_codes(resumed_log))
    turn = run(dying, turn, lambda: len(_codes(resumed_log)) >= 2 * codes_then)  # it sent more, then died
    assert unusable(snapshot, "test", resumed_log.facts(snapshot.offsets)) is None
    successor = StepDriver(resumed_log, config, everything, name="w", now=float(turn), snapshot=snapshot)
    assert successor.step.position((TOPICS.pings, 0)) == snapshot.offsets[(TOPICS.pings, 0)] > 0
    run(successor, turn, lambda: successor.step.final_at >= last)
    assert 0 < codes_then < 2 * codes_then < len(replayed.timeline)
    assert [(c["person"], record_key(c)) for c in _codes(resumed_log)] == [
        (c["person"], record_key(c)) for c in _codes(straight_log)]
    assert _timeline(resumed_log) == [change.to_json() for change in replayed.timeline]


@pytest.mark.parametrize("state, reason", [
    (b"not a pickle", "state unreadable: UnpicklingError: "),
    (pickle.dumps(({"a": 1}, {}, set())), "state holds a dict, not a step"),
])
def test_a_state_that_is_no_step_is_unusable_with_a_reason(signing_key: SigningKey, state: bytes, reason: str) -> None:
    with pytest.raises(Unusable, match="^" + reason):
        restored(state, _config(signing_key), WorkerView(), "w", 0.0)


def test_a_snapshot_holds_no_signing_key_nor_secret(signing_key: SigningKey) -> None:
    secret = b"reference-secret-0123456789abcdef"
    log = MemoryLog(TOPICS, PARTITIONS)
    _fever_visit(log, int(WALL) - DAY)
    driver = StepDriver(log, _config(signing_key, reference_secret=secret), frozenset(range(PARTITIONS)))
    settle([driver], int(WALL) - DAY, WALL)
    state = driver.snapshot("test").state
    private = signing_key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    assert secret not in state and private not in state


def test_records_delivered_again_or_from_before_the_replay_start_are_ignored(signing_key: SigningKey) -> None:
    config = _config(signing_key)
    source = (TOPICS.visits, 0)
    step = Step(config, "w", frozenset({0}), Known([config.rules]), 0.0, starts={source: 0})
    visit = encode_event(Visit(event_id="v1", ts=datetime.fromtimestamp(WALL, timezone.utc), person="p-1",
                               facility="h1", kind="fever_clinic"))
    stale = Record(TOPICS.visits, 0, 7, b"p-1", visit, 0)
    step.take([stale], 0.0, WALL)
    assert step.position(source) == 0 and len(step.inputs) == 0
    first = Record(TOPICS.visits, 0, 0, b"p-1", visit, 0)
    step.take([first, first], 0.0, WALL)
    assert step.position(source) == 1 and len(step.inputs) == 1


def test_a_strangers_bytes_on_the_internal_topics_are_passed_over(signing_key: SigningKey) -> None:
    log = MemoryLog(TOPICS, PARTITIONS)
    strangers = (b"\xff not json", b'{"no": "type"}', b"[1, 2]", b'{"type": "case", "partition": 0}',
                 b'{"type": "progress", "partition": 0, "through": "soon"}', b'{"type": "code", "change_id": "x"}',
                 b'{"type": "rule_set", "yaml": "not: [a rule set"}')
    for stranger in strangers:
        for topic in (TOPICS.cases, TOPICS.rules, TOPICS.dead_letter):
            log.append(topic, None, stranger)
        for partition in range(PARTITIONS):
            log.append(TOPICS.codes, None, stranger, partition)
    driver = StepDriver(log, _config(signing_key), frozenset(range(PARTITIONS)))
    for turn in range(5):
        driver.turn(float(turn), WALL)
    assert driver.view.ready and not driver.step.new_rules
    assert driver.view.codes == {}


def _fever_visit(log: MemoryLog, at: int) -> None:
    visit = Visit(event_id="visit-1", ts=datetime.fromtimestamp(at, timezone.utc), person="p-live-0001",
                  facility="h1", kind="fever_clinic")
    log.append(TOPICS.visits, b"p-live-0001", encode_event(visit))


def _levels(log: MemoryLog) -> list[tuple[str, str]]:
    return [(record["level"], record["assessed_at"]) for record in distinct_changes(_codes(log))]


def test_in_live_mode_the_wall_clock_lapses_a_level_with_no_new_input(signing_key: SigningKey) -> None:
    at = int(WALL)
    log = MemoryLog(TOPICS, PARTITIONS)
    _fever_visit(log, at)
    driver = StepDriver(log, _config(signing_key, live=True, lateness_s=60), frozenset(range(PARTITIONS)))
    # Two turns per clock reading: case progress a turn sends is read back on the next.
    for turn, wall in enumerate((at + 60, at + 60, at + 2 * 3600, at + 2 * 3600)):
        driver.turn(turn / 2, wall)
    assert driver.view.watermark >= at + 3600
    for turn in range(2):
        driver.turn(3.0 + turn, at + 15 * DAY)
    assert driver.view.watermark >= at + 14 * DAY
    assert _levels(log) == [("yellow", format_rfc3339(at)), ("green", format_rfc3339(at + 14 * DAY))]


def test_without_live_mode_time_stands_still_when_inputs_are_quiet(signing_key: SigningKey) -> None:
    at = int(WALL)
    log = MemoryLog(TOPICS, PARTITIONS)
    _fever_visit(log, at)
    driver = StepDriver(log, _config(signing_key, lateness_s=60), frozenset(range(PARTITIONS)))
    settle([driver], at, WALL + 15 * DAY)
    for turn in range(10):
        driver.turn(100.0 + turn, WALL + 15 * DAY)
    assert driver.view.watermark < at + DAY
    assert _levels(log) == [("yellow", format_rfc3339(at))]


def test_a_level_change_is_published_once_and_never_again_when_its_code_expires(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    # Codes are signed when a resident asks (`streams.web`): `codes` carries level changes only.
    log = _published(city)
    driver = StepDriver(log, _config(signing_key, code_validity_s=8), frozenset(range(PARTITIONS)))
    now = settle([driver], _last_change(replayed), WALL)
    published = _codes(log)
    driver.turn(now + 10, WALL + 8)
    assert _codes(log) == published


def test_a_positive_test_is_published_red_on_the_turn_it_is_taken_not_once_the_watermark_passes_it(
    signing_key: SigningKey,
) -> None:
    at = 1_650_000_000
    test = TestResult(event_id="t-1", ts=datetime.fromtimestamp(at, timezone.utc), person="p-early",
                      sampled_at=datetime.fromtimestamp(at - 3600, timezone.utc), test="pcr", result="positive")
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish([encode_event(test)])
    driver = StepDriver(log, _config(signing_key, lateness_s=600), frozenset(range(PARTITIONS)))
    output = driver.turn(0.0, WALL)
    codes = [orjson.loads(m.value) for m in output.messages if m.topic == TOPICS.codes]
    assert [(c["person"], c["level"], c["assessed_at"], c["timeline_version"]) for c in codes] == [
        ("p-early", "red", format_rfc3339(at), TIMELINE_VERSION)
    ]
    assert driver.view.watermark < at, "published before the watermark reached the test"
    settle([driver], at, WALL, start=1.0)
    assert len(_codes(log)) == 1, "settling the same red published it again"


def _ping(person: str, at: int, lat: float = 30.66, lon: float = 104.06) -> bytes:
    return encode_event(Ping(event_id=f"ping-{person}-{at}", ts=datetime.fromtimestamp(at, timezone.utc),
                             person=person, lat=lat, lon=lon, source="gps"))


def test_a_reason_starting_and_lapsing_at_the_same_level_is_published_and_the_stream_equals_replay(
    signing_key: SigningKey, tmp_path: Path,
) -> None:
    # Yellow from a fever clinic visit; twenty minutes some 200 m from a case an hour later make a companion
    # (the same ~800 m cell, not the same ~100 m one), known when the case's test is: still yellow, with a
    # second reason, which lapses 7 days after the contact while the visit's goes on (14 days).
    at = 1_650_000_000
    lines = [encode_event(Visit(event_id="fever-1", ts=datetime.fromtimestamp(at, timezone.utc), person="p-fever",
                                facility="h1", kind="fever_clinic"))]
    lines += [_ping(person, at + 3600 + 60 * minute, lat=lat) for minute in range(21)
              for person, lat in (("p-case", 30.658), ("p-fever", 30.66))]
    lines.append(encode_event(TestResult(
        event_id="test-1", ts=datetime.fromtimestamp(at + DAY, timezone.utc), person="p-case",
        sampled_at=datetime.fromtimestamp(at + 2 * 3600, timezone.utc), test="pcr", result="positive")))
    lines.append(_ping("p-elsewhere", at + 16 * DAY, lat=31.0))  # moves event time past every lapse
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    replayed = replay_file(events, load_rule_set(RULES))
    changes = [c for c in replayed.timeline if c.person == "p-fever"]
    assert [(c.level, [r.rule for r in c.reasons]) for c in changes] == [
        ("yellow", ["fever_clinic"]), ("yellow", ["companion", "fever_clinic"]), ("yellow", ["fever_clinic"]),
        ("green", []),
    ]
    companion = changes[1].reasons[0]
    assert [c.at for c in changes] == [at, at + DAY, companion.until, at + 14 * DAY]
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(lines)
    config = _config(signing_key, lateness_s=600)
    drivers = [StepDriver(log, config, frozenset({0}), name="first"), StepDriver(log, config, frozenset({1, 2}))]
    settle(drivers, _last_change(replayed), WALL)
    assert_each_record_changes_what_is_shown(_codes(log))
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]
    assert {record["timeline_version"] for record in _codes(log)} == {TIMELINE_VERSION}


def test_a_contact_of_a_case_the_same_worker_announces_is_published_red_on_the_turn_the_test_is_taken(
    signing_key: SigningKey, contact_then_case: Any,
) -> None:
    # The worker that announces the case early (`early_case` on `cases`) need not wait for its own
    # message to come back.
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(contact_then_case.pings)
    driver = StepDriver(log, _config(signing_key, lateness_s=600), frozenset(range(PARTITIONS)))
    now = settle([driver], contact_then_case.at + 3600, WALL)
    assert _codes(log) == []
    log.publish([contact_then_case.positive])
    output = driver.turn(now + 1, WALL)
    codes = [orjson.loads(m.value) for m in output.messages if m.topic == TOPICS.codes]
    assert sorted((c["person"], c["level"]) for c in codes) == [("p-case", "red"), ("p-near", "red")]


def test_progress_on_cases_for_a_partition_no_worker_has_holds_nothing_back(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    # Anyone who can write to `cases` can report a partition that does not exist: waiting for it
    # would hold every worker's watermark there for ever.
    log = _published(city)
    for partition in (PARTITIONS, 99, -1):
        log.append(TOPICS.cases, None, orjson.dumps({"type": "progress", "partition": partition, "through": 5}))
    driver = StepDriver(log, _config(signing_key), frozenset(range(PARTITIONS)))
    settle([driver], _last_change(replayed), WALL)
    assert _timeline(log) == [change.to_json() for change in replayed.timeline]
