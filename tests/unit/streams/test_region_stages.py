"""Presence split by region, as three stages on an in-memory log: stays per ping partition,
presence per region partition, scoring per person partition (`streams.stages`). However
the partitions are split between workers, and when a worker dies, the published timeline
is replay's."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from codes import SigningKey
from scoring.replay import ReplayResult
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from streams.eventtime import NEVER
from streams.stages import CityClock
from streams.step import WorkerConfig, partition_of
from streams.testing import PRESENCE, SCORING, STAYS, MemoryLog, StepDriver, assert_each_record_changes_what_is_shown, settle
from streams.topics import Topics

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
    assert_each_record_changes_what_is_shown(log.codes())
    assert log.timeline() == [change.to_json() for change in replayed.timeline]
    assert _unasked(drivers) == []
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
    assert_each_record_changes_what_is_shown(log.codes())
    assert log.timeline() == [change.to_json() for change in replayed.timeline]
    assert _unasked(drivers) == [], "what a rebuilt stage sent again is taken once"


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
