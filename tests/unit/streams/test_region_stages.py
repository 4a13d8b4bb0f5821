"""Presence split by region, as three stages on an in-memory log: stays per ping partition,
presence per region partition, scoring per person partition (`streams.stages`). However
the partitions are split between workers, and when a worker dies, the published timeline
is replay's."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from codes import SigningKey
from scoring.replay import ReplayResult, replay_file
from scoring.rules import RuleSet, load_rule_set
from scoring.events import Ping, Visit, encode_event
from scoring.timeutil import format_rfc3339, to_epoch
from simulators.config import SimulationConfig
from streams.eventtime import NEVER
from streams.rulebook import rule_set_message
from streams.snapshots import Snapshot, unusable
from streams.stages import CityClock
from streams.step import Record, WorkerConfig, partition_of
from streams.testing import PRESENCE, SCORING, STAYS, MemoryLog, StepDriver, assert_each_record_changes_what_is_shown, settle
from streams.topics import Topics
from streams.wire import rule_refs

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
PARTITIONS = 3
TOPICS = Topics(prefix="s.")
WALL = 1_700_000_000.0
DAY = 86_400
CITY = SimulationConfig(residents=160, days=3, seed=5)


@pytest.fixture(scope="module")
def city_config() -> SimulationConfig:
    return CITY


def _config(key: SigningKey) -> WorkerConfig:
    return WorkerConfig(bootstrap="memory", topics=TOPICS, group="g", rules=load_rule_set(RULES), keys=[key],
                        partitions=PARTITIONS, lateness_s=2 * DAY, idle_s=2.0, clock=lambda: WALL, stages=True)


def _published(city: Path) -> MemoryLog:
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(city.read_bytes().splitlines())
    return log


def _last_change(replayed: ReplayResult) -> int:
    return max(change.at for change in replayed.timeline)


def _unasked(drivers: list[StepDriver]) -> list:
    """Calls received that no loop made: stays or exposures taken twice would be left here."""
    left = []
    for driver in drivers:
        if driver.role == PRESENCE:
            left += [call for part in driver.step.parts.values() for call in part.presence.pending()]
        elif driver.role == SCORING:
            left += driver.step.exposures.presence.pending()
    return left


def _assert_replay_published(log: MemoryLog, drivers: list[StepDriver], replayed: ReplayResult) -> None:
    """The codes on the log are replay's timeline, no record sent twice, and every call a stage
    received was one a loop made (what a stage sent again was taken once)."""
    assert_each_record_changes_what_is_shown(log.codes())
    assert log.timeline() == [change.to_json() for change in replayed.timeline]
    assert _unasked(drivers) == []


def _workers(log: MemoryLog, config: WorkerConfig) -> list[StepDriver]:
    """Two workers, each running every stage for some partitions (split differently per stage)."""
    return [
        StepDriver(log, config, frozenset({0}), name="stays-a", role=STAYS),
        StepDriver(log, config, frozenset({1, 2}), name="stays-b", role=STAYS),
        StepDriver(log, config, frozenset({0, 1}), name="presence-a", role=PRESENCE),
        StepDriver(log, config, frozenset({2}), name="presence-b", role=PRESENCE),
        StepDriver(log, config, frozenset({2}), name="scoring-a"),
        StepDriver(log, config, frozenset({0, 1}), name="scoring-b"),
    ]


def test_two_workers_splitting_ping_region_and_person_partitions_publish_the_replay_timeline(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    log = _published(city)
    drivers = _workers(log, _config(signing_key))
    settle(drivers, _last_change(replayed), WALL)
    assert replayed.timeline, "the city must restrict someone"
    _assert_replay_published(log, drivers, replayed)
    # A stage's state is kept per input partition and pickles (a snapshot can be state + offsets per partition).
    for driver in drivers[:4]:
        for state in driver.step.parts.values():
            again = pickle.loads(pickle.dumps(state))
            assert again.through == state.through and again.scorer.settled_through == state.scorer.settled_through
    # Each ping is processed once, by the stays stage of its partition.
    pings = {p: sum(1 for r in log.logs[(TOPICS.pings, p)] if b'"ping"' in (r.value or b"")) for p in range(PARTITIONS)}
    processed = [driver.step.pings_processed for driver in drivers[:2]]
    assert processed == [pings[0], pings[1] + pings[2]]
    assert all(log.logs[(TOPICS.stays, r)] for r in range(PARTITIONS))
    for driver in drivers[4:]:
        assert {partition_of(person, PARTITIONS) for person in driver.view.codes} <= driver.owned


@pytest.mark.parametrize("dies", [1, 3, 5], ids=["stays", "presence", "scoring"])
def test_a_worker_killed_mid_run_and_rebuilt_from_the_start_changes_nothing(
    city: Path, replayed: ReplayResult, signing_key: SigningKey, dies: int
) -> None:
    log = _published(city)
    drivers = _workers(log, _config(signing_key))
    now = 0.0
    while len(log.codes()) < len(replayed.timeline) // 2:
        for driver in drivers:
            driver.turn(now, WALL, limit=500)
        now += 0.5
        assert now < 1000, "the first half of the timeline must be published"
    drivers[dies].kill(now)  # what it sent stays on the log, and is sent again
    settle(drivers, _last_change(replayed), WALL, start=now)
    _assert_replay_published(log, drivers, replayed)


def test_scoring_does_not_pass_a_region_partition_that_has_not_reported_however_its_topic_ends(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    # The drivers report every partition read to its end at once: with region partition 2's
    # stage not running, `exposures` looks caught up and quiet, but only reported progress counts.
    log = _published(city)
    drivers = _workers(log, _config(signing_key))
    running = [driver for driver in drivers if driver.name != "presence-b"]
    settled = []
    for turn in range(200):
        for driver in running:
            settled.append(driver.turn(turn * 0.5, WALL).settled_through)
    assert all(log.logs[(TOPICS.exposures, q)] for q in range(PARTITIONS)), "the other regions must have sent"
    assert settled == [None] * len(settled)
    assert [driver.view.watermark for driver in drivers[4:]] == [NEVER, NEVER]
    settle(drivers, _last_change(replayed), WALL, start=100.0)
    assert log.timeline() == [change.to_json() for change in replayed.timeline]


def test_a_contact_of_a_case_is_published_red_from_the_regions_answer_before_the_test_is_scored(
    signing_key: SigningKey, contact_then_case: Any,
) -> None:
    # The case's early notice reaches the regions, which answer from the stays already closed (a probe).
    at = contact_then_case.at
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(contact_then_case.pings)
    config = replace(_config(signing_key), lateness_s=600)
    drivers = _workers(log, config)
    now = settle(drivers, at + 3600, WALL)
    assert log.codes() == []
    log.publish([contact_then_case.positive])
    for _ in range(2):  # the early notice to the regions, their answer back: no time passes
        for driver in drivers:
            driver.turn(now + 1, WALL)
    assert sorted((c["person"], c["level"]) for c in log.codes()) == [("p-case", "red"), ("p-near", "red")]
    assert all(driver.step.scored_through < at + 3 * 3600 for driver in drivers[4:]), "not from scoring the test"
    # Turns with nothing new ask no region again: the answers are the ones already sent.
    asked: list[Any] = []
    for driver in drivers[2:4]:
        for part in driver.step.parts.values():
            probe = part.presence.probe
            part.presence.probe = lambda *args, probe=probe: asked.append(args) or probe(*args)
    for _ in range(3):
        for driver in drivers[2:4]:
            driver.turn(now + 1, WALL)
    assert asked == []


def test_the_city_clock_decides_a_final_once_every_reporter_is_idle() -> None:
    clock = CityClock(partitions=1)
    assert clock.through() == NEVER
    clock.read({"type": "pings", "partition": 0, "through": 90, "newest": 100, "idle": False})
    clock.read({"type": "progress", "partition": 0, "through": 120, "newest": 120, "idle": True})
    assert clock.finals == [] and clock.through() == 90  # an idle reporter holds nothing back
    clock.read({"type": "pings", "partition": 0, "through": 100, "newest": 100, "idle": True})
    assert clock.finals == [120] and clock.through() == 120
    # A rebuilding reporter starts again from nothing: nothing goes back, no final twice.
    clock.read({"type": "pings", "partition": 0, "through": 10, "newest": 10, "idle": False})
    clock.read({"type": "pings", "partition": 0, "through": 100, "newest": 100, "idle": True})
    assert clock.finals == [120] and clock.through() == 120


def test_in_live_mode_the_wall_clock_moves_every_stage_on_and_lapses_a_level_with_no_new_input(
    signing_key: SigningKey,
) -> None:
    # No ping at all: only the wall clock can move the stays stages, hence the regions and scoring.
    at = int(WALL)
    log = MemoryLog(TOPICS, PARTITIONS)
    visit = Visit(event_id="visit-1", ts=datetime.fromtimestamp(at, timezone.utc), person="p-live-0001",
                  facility="h1", kind="fever_clinic")
    log.append(TOPICS.visits, b"p-live-0001", encode_event(visit))
    config = replace(_config(signing_key), live=True, lateness_s=60)
    drivers = _workers(log, config)
    # Several turns per clock reading: progress a stage sends is read downstream on the next.
    for turn, wall in enumerate([at + 60] * 4 + [at + 2 * 3600] * 4 + [at + 15 * DAY] * 4):
        for driver in drivers:
            driver.turn(turn / 4, wall)
    assert [(change["level"], change["at"]) for change in log.timeline()] == [
        ("yellow", format_rfc3339(at)), ("green", format_rfc3339(at + 14 * DAY))]
    assert all(driver.step.clock.finals == [] for driver in drivers if driver.role == STAYS), \
        "no final in live mode: the wall clock completes ticks"


def test_while_visits_keep_arriving_scoring_keeps_up_with_the_pings_newest_event_time(signing_key: SigningKey) -> None:
    # Visits never fall silent, so no report is idle: case progress must follow the stream's newest
    # event time (the pings', reported by the stays stages), not presence's progress minus the
    # lateness, which would hold the stays stages back a lateness per round trip.
    log = MemoryLog(TOPICS, PARTITIONS)
    config = replace(_config(signing_key), lateness_s=600, idle_s=10_000.0)
    drivers = _workers(log, config)
    start, now = int(WALL), 0.0
    for minute in range(0, 6 * 60, 5):
        at = start + minute * 60
        for person in range(6):
            ts = datetime.fromtimestamp(at, timezone.utc)
            log.append(TOPICS.pings, f"p-{person}".encode(), encode_event(
                Ping(event_id=f"ping-{minute}-{person}", ts=ts, person=f"p-{person}", lat=30.5, lon=114.3, source="gps")))
            log.append(TOPICS.visits, f"p-{person}".encode(), encode_event(
                Visit(event_id=f"visit-{minute}-{person}", ts=ts, person=f"p-{person}", facility="h1", kind="recovery")))
        for _ in range(2):
            for driver in drivers:
                driver.turn(now, WALL)
            now += 0.5
    newest = start + (6 * 60 - 5) * 60
    behind = [newest - driver.step.scored_through for driver in drivers if driver.role == SCORING]
    assert all(lag <= 2 * 3600 for lag in behind), f"scoring is {behind} s of event time behind the newest event"


def test_the_city_clock_of_a_live_city_decides_no_final_and_holds_nothing_back() -> None:
    clock = CityClock(partitions=1, live=True)
    clock.read({"type": "pings", "partition": 0, "through": 100, "newest": 100, "idle": True})
    clock.read({"type": "progress", "partition": 0, "through": 120, "newest": 120, "idle": True})
    assert clock.finals == [] and clock.through() > 10**15


# -- snapshots: each stage resumes from its own -------------------------------------------


def _run_until(drivers: list[StepDriver], now: float, done: Callable[[], bool], limit: int | None = 500) -> float:
    """Turn every driver, reading at most `limit` records a partition a turn (None: all), until `done()`."""
    for _ in range(4000):
        if done():
            return now
        for driver in drivers:
            driver.turn(now, WALL, limit=limit)
        now += 0.5
    raise AssertionError("the run must get there")


def _turns(drivers: list[StepDriver], now: float, count: int, limit: int = 500) -> float:
    """`count` turns of every driver, reading at most `limit` records a partition a turn."""
    for _ in range(count):
        for driver in drivers:
            driver.turn(now, WALL, limit=limit)
        now += 0.5
    return now


def _halves(city: Path) -> tuple[list[bytes], list[bytes], int]:
    """The city's events up to the middle of its event time, the rest, and the last moment of the first."""
    lines = city.read_bytes().splitlines()
    moments = [to_epoch(datetime.fromisoformat(orjson.loads(line)["ts"].replace("Z", "+00:00"))) for line in lines]
    middle = (min(moments) + max(moments)) // 2
    return ([line for line, at in zip(lines, moments) if at <= middle],
            [line for line, at in zip(lines, moments) if at > middle], max(at for at in moments if at <= middle))


MAIN_INPUT = {STAYS: TOPICS.pings, PRESENCE: TOPICS.stays, SCORING: TOPICS.exposures}


def _sent(log: MemoryLog, topic: str, senders: frozenset[int], cut: dict[int, int], after: bool) -> dict:
    """What `senders` sent of each call on `topic` (`stays` or `exposures`), by (receiving
    partition, sender, call, index): in the messages before each partition's `cut` offset, or
    (`after`) from it on."""
    sent = {}
    for q, at in cut.items():
        for record in log.logs[(topic, q)][at:] if after else log.logs[(topic, q)][:at]:
            message = orjson.loads(record.value)
            if message["from"] in senders:
                for call, index, content in message["calls"]:
                    sent[(q, message["from"], tuple(call), index)] = content
    return sent


@pytest.mark.parametrize("dies, into_second_half", [(1, False), (3, True), (5, True)],
                         ids=["stays", "presence", "scoring"])
def test_a_worker_resumed_from_its_snapshot_after_a_kill_ends_with_the_replay_timeline(
    city: Path, replayed: ReplayResult, signing_key: SigningKey, dies: int, into_second_half: bool
) -> None:
    # Half the city, then a pause: every stage idle, a final. The worker is snapshotted early, runs on
    # through the final (and into the rest of the city: a region finds exposures there), is killed
    # and resumed from the snapshot: it reads again, and sends again, all that followed it. A lateness
    # of 3 hours (the file's worst disorder is 2.4): the stages flush and send as they read.
    config = replace(_config(signing_key), lateness_s=3 * 3600)
    first, second, middle = _halves(city)
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(first)
    drivers = _workers(log, config)
    dying = drivers[dies]
    now = _run_until(drivers, 0.0, lambda: bool(dying.step.position((MAIN_INPUT[dying.role], max(dying.owned)))))
    now = _turns(drivers, now, 5)
    snapshot = dying.snapshot("test")
    sent_then = sum(len(log.logs[source]) for source in log.logs)
    now = settle(drivers, middle, WALL, start=now)
    final = list(dying.step.clock.finals) if dies == 1 else None
    if into_second_half:
        log.publish(second)
        regions = dying.owned if dying.role == PRESENCE else frozenset(range(PARTITIONS))
        everything = {q: 0 for q in range(PARTITIONS)}
        now = _run_until(drivers, now, lambda: bool(_sent(log, TOPICS.exposures, regions, everything, after=True)))
    assert sum(len(log.logs[source]) for source in log.logs) > sent_then, "it sent more, then died"
    assert unusable(snapshot, "test", log.facts(snapshot.offsets)) is None
    resumed = StepDriver(log, config, dying.owned, name=dying.name, now=now, role=dying.role, snapshot=snapshot)
    assert [resumed.step.position((MAIN_INPUT[dying.role], p)) for p in sorted(dying.owned)] == [
        snapshot.offsets[(MAIN_INPUT[dying.role], p)] for p in sorted(dying.owned)], "it resumes where the snapshot was"
    drivers[dies] = resumed
    output = {STAYS: TOPICS.stays, PRESENCE: TOPICS.exposures}.get(dying.role)
    killed_at = {q: len(log.logs[(output, q)]) for q in range(PARTITIONS)} if output else {}
    now = _turns(drivers, now, 40)  # reading again a few hundred records a partition a turn
    if not into_second_half:
        log.publish(second)
    _run_until(drivers, now, lambda: all(d.step.final_at >= _last_change(replayed) for d in drivers[4:]), limit=None)
    if output is not None:
        # The receivers take a call sent again as the one they have: it must be the same (a final
        # made before the pings it covers are read again would not be).
        before, again = (_sent(log, output, dying.owned, killed_at, after) for after in (False, True))
        assert again.keys() & before.keys(), "it sends again what it sent after the snapshot"
        assert {key: again[key] for key in again.keys() & before.keys()} == {
            key: before[key] for key in again.keys() & before.keys()}
    if final is not None:
        assert final and resumed.step.clock.finals[:len(final)] == final, "a final between the snapshot and the kill"
    _assert_replay_published(log, drivers, replayed)


def test_snapshots_of_fresh_stages_and_of_resumed_ones_that_read_nothing_since_resume_like_the_originals(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    config = _config(signing_key)
    log = _published(city)

    def resumed(drivers: list[StepDriver], now: float) -> tuple[list[StepDriver], list[Snapshot]]:
        snapshots = [driver.snapshot("test") for driver in drivers]
        assert all(unusable(snapshot, "test", log.facts(snapshot.offsets)) is None for snapshot in snapshots)
        return [StepDriver(log, config, d.owned, name=d.name, now=now, role=d.role, snapshot=snapshot)
                for d, snapshot in zip(drivers, snapshots)], snapshots

    drivers, fresh = resumed(_workers(log, config), 0.0)
    # Every input partition, internal and broadcast topics included, noted from its start.
    assert [set(snapshot.offsets.values()) for snapshot in fresh] == [{0}] * len(fresh)
    assert {source[0] for snapshot in fresh for source in snapshot.offsets} == {
        TOPICS.pings, TOPICS.stays, TOPICS.exposures, TOPICS.visits, TOPICS.cases, TOPICS.areas, TOPICS.rules,
        TOPICS.codes}
    now = _run_until(drivers, 0.0, lambda: len(log.codes()) >= len(replayed.timeline) // 3)
    drivers, mid = resumed(drivers, now)
    drivers, again = resumed(drivers, now)  # nothing read since the resume: the same offsets, the same tails
    assert [(s.offsets, s.tails) for s in again] == [(s.offsets, s.tails) for s in mid]
    settle(drivers, _last_change(replayed), WALL, start=now)
    _assert_replay_published(log, drivers, replayed)


def test_a_stage_snapshot_whose_offsets_the_log_no_longer_backs_is_refused_with_a_reason(
    signing_key: SigningKey, contact_then_case: Any,
) -> None:
    config = _config(signing_key)
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(contact_then_case.pings)
    drivers = _workers(log, config)
    settle(drivers, contact_then_case.at + 3600, WALL)
    snapshot = drivers[2].snapshot("test")  # a presence stage: it read `stays`
    read = sorted(source for source, offset in snapshot.offsets.items() if source[0] == TOPICS.stays and offset)
    assert read, "it must have read stays"
    assert unusable(snapshot, "test", log.facts(snapshot.offsets)) is None
    # `stays` created again (empty), or holding other records at the snapshot's offsets.
    emptied = MemoryLog(TOPICS, PARTITIONS)
    emptied.logs.update({source: records for source, records in log.logs.items() if source[0] != TOPICS.stays})
    offset = snapshot.offsets[read[0]]
    assert unusable(snapshot, "test", emptied.facts(snapshot.offsets)) == (
        f"{read[0][0]}[{read[0][1]}] ends at offset 0, before the snapshot's {offset} (data lost?)")
    other = MemoryLog(TOPICS, PARTITIONS)
    other.logs.update(log.logs)
    other.logs[read[0]] = [replace(record, value=b"{}") for record in log.logs[read[0]]]
    assert unusable(snapshot, "test", other.facts(snapshot.offsets)) == (
        f"{read[0][0]}[{read[0][1]}]: the record before offset {offset} is not the one the snapshot read "
        "(topic created again?)")
    assert unusable(snapshot, "another", log.facts(snapshot.offsets)) == "made by another configuration or software version"


def test_a_stays_stage_feeds_its_loops_a_bounded_number_of_pings_a_turn_and_sends_the_same_stays(
    signing_key: SigningKey, contact_then_case: Any,
) -> None:
    # A rebuild or a resume has read much at once; on Faust a turn must stay short (heartbeats).
    def run(batch_size: int) -> tuple[MemoryLog, list[int], list[bool]]:
        log = MemoryLog(TOPICS, PARTITIONS)
        log.publish(contact_then_case.pings)
        drivers = _workers(log, replace(_config(signing_key), batch_size=batch_size))
        fed, more = [], []
        for turn in range(60):
            for driver in drivers:
                held = sum(len(part.pings) for part in driver.step.parts.values()) if driver.role == STAYS else 0
                taken = driver.step.pings_processed if driver.role == STAYS else 0
                output = driver.turn(turn * 0.5, WALL)
                if driver.role == STAYS:
                    fed.append(held + driver.step.pings_processed - taken
                               - sum(len(part.pings) for part in driver.step.parts.values()))
                    more.append(output.more)
        assert all(not part.pings for driver in drivers[:2] for part in driver.step.parts.values()), "all fed"
        return log, fed, more

    def stays(log: MemoryLog) -> dict[tuple[int, int], list]:
        """Every call each ping partition sent each region partition, in order, however batched."""
        sent: dict[tuple[int, int], list] = {}
        for q in range(PARTITIONS):
            for record in log.logs[(TOPICS.stays, q)]:
                message = orjson.loads(record.value)
                sent.setdefault((q, message["from"]), []).extend(message["calls"])
        return sent

    at_once, fed_at_once, _ = run(batch_size=5000)
    bounded, fed, more = run(batch_size=4)
    moments = [orjson.loads(line)["ts"] for line in contact_then_case.pings]
    same_moment = max(moments.count(moment) for moment in moments)
    assert max(fed_at_once) > 4 * len(contact_then_case.pings) // 10, "unbounded, a turn feeds much"
    assert max(fed) <= 4 + 2 * same_moment, "no turn feeds more than the bound and the rest of one moment each"
    assert any(more) and not more[-1]
    assert stays(bounded) == stays(at_once)


# -- hostile input on the stages' topics ---------------------------------------------------

_NOT_A_STAGES_MESSAGE = [
    b"not json", b"[]", b'{"from": 0, "through": 5, "calls": 7}', b'{"from": 0, "through": 5, "calls": [1]}',
    b'{"from": 0, "through": 5, "calls": [[[], 0, []]]}', b'{"from": 0, "through": 5, "calls": [[["ingest", "a"], 0, []]]}',
    b'{"from": 0, "through": 5, "calls": [[["ingest", 10, [1]], 0, []]]}',
    b'{"from": 0, "through": 5, "calls": [[["ingest", 10, 9], 0, [{"kind": "nope"}]]]}',
    b'{"from": 0, "through": 5, "calls": [[["ingest", 10, 9], 0, [{"person": "x"}]]]}',
    b'{"from": 0, "through": 5, "calls": [[["ingest", 10, 9], 0, [{"kind": "close_contact", "added": [["p"], [1, 2], [1], [2]],'
    b' "withdrawn": [[], [], [], []]}]]]}',
    b'{"from": 0, "through": 5, "finals": 5}', b'{"from": 0, "through": 5, "forgotten": [1]}',
    b'{"from": 0, "through": 5, "probes": [[["probe", 1], 0, [{"x": 1}]]]}',
    b'{"from": 0, "through": 5, "calls": [[["ingest", 10, 9], 0, [{"exposure_id": "e", "person": 5}]]]}',
    b'{"type": "pings", "partition": 0, "through": true, "newest": "x", "idle": 1}', b'{"type": "case", "person": 5}',
    b'{"type": "early_case", "window": 7}', b'{"type": "progress", "partition": 99, "through": 5}',
    b'{"type": "progress", "partition": -1, "through": [], "newest": 5, "idle": true}',
    b'{"from": 0, "through": 5, "first": "x"}', b'{"from": 0, "through": 5, "first": 1.5}',
]
"""Each is passed over whether or not it names the receivers' rule-set history (`Sent.rules`)."""


@pytest.mark.parametrize("topic", [TOPICS.stays, TOPICS.exposures, TOPICS.cases])
def test_messages_no_stage_sent_on_the_stages_topics_are_passed_over_and_the_city_still_settles_as_replay(
    city: Path, replayed: ReplayResult, signing_key: SigningKey, topic: str
) -> None:
    # Anyone who can write to the broker can write to `stays`, `exposures` and `cases`: what no
    # stage sent is taken as nothing (and said so), never a crash of the agent reading it.
    log = MemoryLog(TOPICS, PARTITIONS)
    refs = rule_refs([load_rule_set(RULES)])
    for value in _NOT_A_STAGES_MESSAGE:
        data = orjson.loads(value) if value.startswith(b"{") else None
        ruled = [orjson.dumps({**data, "rules": refs})] if isinstance(data, dict) and "from" in data else []
        for p in range(log.count(topic)):
            for message in [value, *ruled]:
                log.append(topic, None, message, partition=p)
    log.publish(city.read_bytes().splitlines())
    drivers = _workers(log, _config(signing_key))
    settle(drivers, _last_change(replayed), WALL)
    assert log.timeline() == [change.to_json() for change in replayed.timeline]
    assert _unasked(drivers) == []


def test_a_rule_set_published_between_two_halves_rebuilds_every_stage_and_the_city_still_settles_as_replay(
    city: Path, signing_key: SigningKey
) -> None:
    # Every stage rebuilds from offset 0 under the new history: each reads first what its senders'
    # previous incarnations sent (under one plan fewer), then what they send again for the same calls.
    first, second, middle = _halves(city)
    document = yaml.safe_load((RULES.parent / "points.yaml").read_text())
    document["valid_from"] = format_rfc3339(middle + 1)
    text = yaml.safe_dump(document, sort_keys=False)
    points = RuleSet.from_yaml_text(text, "points (switched)")
    expected = replay_file(city, [load_rule_set(RULES), points])
    assert any(change.rule_set == points.ref for change in expected.timeline), "the city must feel the switch"
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(first)
    drivers = _workers(log, replace(_config(signing_key), lateness_s=DAY))
    now = _turns(drivers, 0.0, 60)
    assert log.logs[(TOPICS.stays, 0)] and log.logs[(TOPICS.exposures, 0)], "the stages sent under the first rules"
    log.append(TOPICS.rules, points.ref.encode(), rule_set_message(points, text))
    now = _turns(drivers, now, 4)
    assert all([rules.ref for rules in driver.step.history][-1] == points.ref for driver in drivers)
    log.publish(second)
    settle(drivers, _last_change(expected), WALL, start=now)
    _assert_replay_published(log, drivers, expected)


def test_a_stays_stage_notes_no_position_of_a_pings_partition_it_does_not_own(signing_key: SigningKey) -> None:
    # What it notes, a snapshot covers and a resume seeks: a partition another worker owns would be
    # sought by this one, which is not assigned it.
    stays = StepDriver(MemoryLog(TOPICS, PARTITIONS), _config(signing_key), frozenset({0}), role=STAYS).step
    ping = Ping(event_id="e", ts=datetime.fromtimestamp(1_650_000_000, tz=timezone.utc), person="p", lat=31.2, lon=121.4, source="gps")
    stays.take([Record(TOPICS.pings, 1, 0, b"p", encode_event(ping), 0)], 0.0, WALL)
    assert (TOPICS.pings, 1) not in stays.positions.covered() and stays.pings_processed == 0
