"""A rebuild publishes nothing it rebuilt from a past whose pings retention deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from codes import SigningKey
from scoring.eventfile import read_jsonl
from scoring.replay import ReplayResult, replay
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from streams.eventtime import NEVER
from streams.horizon import RebuildHorizon
from streams.step import WorkerConfig
from streams.testing import PRESENCE, STAYS, MemoryLog, StepDriver, settle
from streams.topics import Topics
from tests.unit.streams.conftest import DAY, RULES, WALL

WINDOW = 14 * 86_400


def test_with_every_ping_kept_the_whole_rebuilt_history_counts() -> None:
    horizon = RebuildHorizon(WINDOW)
    horizon.saw_ping(0, 1_000)
    assert horizon.publish_from == NEVER


def test_after_deletion_history_counts_from_a_window_after_the_latest_first_ping() -> None:
    horizon = RebuildHorizon(WINDOW, truncated=True)
    horizon.saw_ping(0, 5_000)
    horizon.saw_ping(1, 9_000)
    horizon.saw_ping(0, 1_000)
    horizon.saw_ping(1, 20_000)
    assert horizon.publish_from == 9_000 + WINDOW


def test_a_presence_stage_report_marks_the_rebuild_truncated_and_its_latest_first_ping_counts() -> None:
    horizon = RebuildHorizon(WINDOW)
    horizon.reported(0, 5_000)
    horizon.reported(1, 3_000)
    horizon.reported(0, 9_000)  # region 0 heard of one more truncated pings partition
    horizon.reported(0, 4_000)  # a message of before: the latest word stands
    assert horizon.publish_from == 9_000 + WINDOW


# -- on the log: every worker rebuilt after retention deleted the first half of every pings partition --

CITY = SimulationConfig(residents=160, days=3, seed=5)
PARTITIONS = 3
TOPICS = Topics(prefix="h.")


@pytest.fixture(scope="module")
def city_config() -> SimulationConfig:
    return CITY


def _workers(log: MemoryLog, config: WorkerConfig) -> list[StepDriver]:
    """Every partition's stages (or, unsplit, the one step reading every ping), split over two workers."""
    if not config.stages:
        return [StepDriver(log, config, frozenset({0}), name="a"), StepDriver(log, config, frozenset({1, 2}), name="b")]
    return [StepDriver(log, config, frozenset({0}), role=STAYS), StepDriver(log, config, frozenset({1, 2}), role=STAYS),
            StepDriver(log, config, frozenset({0, 1}), role=PRESENCE), StepDriver(log, config, frozenset({2}), role=PRESENCE),
            StepDriver(log, config, frozenset({2}), name="a"), StepDriver(log, config, frozenset({0, 1}), name="b")]


@pytest.mark.parametrize("stages", [False, True], ids=["unsplit", "staged"])
def test_workers_rebuilt_after_retention_deleted_pings_publish_no_correction_of_what_complete_inputs_settled(
    city: Path, replayed: ReplayResult, signing_key: SigningKey, stages: bool
) -> None:
    config = WorkerConfig(bootstrap="memory", topics=TOPICS, group="g", rules=load_rule_set(RULES), keys=[signing_key],
                          partitions=PARTITIONS, lateness_s=2 * DAY, idle_s=2.0, clock=lambda: WALL, stages=stages)
    log = MemoryLog(TOPICS, PARTITIONS)
    log.publish(city.read_bytes().splitlines())
    end = max(change.at for change in replayed.timeline)
    now = settle(_workers(log, config), end, WALL)
    published = log.codes()
    assert log.timeline() == [change.to_json() for change in replayed.timeline]
    for p in range(PARTITIONS):
        log.delete_before((TOPICS.pings, p), len(log.logs[(TOPICS.pings, p)]) // 2)
        # The stages' topics lost with them, all of it: every stage rebuilds from the kept pings alone.
        for derived in (TOPICS.stays, TOPICS.exposures):
            log.delete_before((derived, p), len(log.logs[(derived, p)]))
    # What the kept pings alone make of the city differs: a rebuild publishing it would correct the past.
    kept = [record.value or b"" for (topic, p), records in sorted(log.logs.items())
            if topic in (TOPICS.pings, TOPICS.visits, TOPICS.areas)
            for record in records[log.beginnings.get((topic, p), 0):]]
    assert replay(read_jsonl(iter(kept)), load_rule_set(RULES)).timeline != replayed.timeline, "the deletion must matter"
    settle(_workers(log, config), end, WALL, start=now + 10.0)
    # The horizon (a window after the latest first ping kept) is past the city's end: nothing is sent again.
    assert log.codes() == published


def test_a_rebuilt_stays_stage_passes_no_final_of_before_the_deletion_until_it_has_its_first_ping(
    city: Path, replayed: ReplayResult, signing_key: SigningKey
) -> None:
    # A final the city clock decided (every stage idle) when more of each pings partition was kept: the
    # rebuilt stays stages read it on `cases` before their pings fetch answers. Made then, their progress
    # would pass it with no first ping kept said, and scoring settle past it without the horizon.
    config = WorkerConfig(bootstrap="memory", topics=TOPICS, group="g", rules=load_rule_set(RULES), keys=[signing_key],
                          partitions=PARTITIONS, lateness_s=2 * DAY, idle_s=2.0, clock=lambda: WALL, stages=True)
    log = MemoryLog(TOPICS, PARTITIONS)
    lines = city.read_bytes().splitlines()
    part = 9 * len(lines) // 10
    log.publish(lines[:part])
    workers = _workers(log, config)
    now = 0.0
    for _ in range(200):  # every partition read and idle: a final is decided
        for worker in workers:
            worker.turn(now, WALL)
        now += 0.5
    assert workers[0].step.clock.finals, "the idle city must have a final"
    log.publish(lines[part:])
    end = max(change.at for change in replayed.timeline)
    now = settle(workers, end, WALL, start=now)
    published = log.codes()
    for p in range(PARTITIONS):  # retention: past what that final had read of every pings partition
        log.delete_before((TOPICS.pings, p), 19 * len(log.logs[(TOPICS.pings, p)]) // 20)
        for derived in (TOPICS.stays, TOPICS.exposures):
            log.delete_before((derived, p), len(log.logs[(derived, p)]))
    rebuilt = _workers(log, config)
    for _ in range(30):
        for worker in rebuilt:
            worker.turn(now, WALL, unanswered={TOPICS.pings} if worker.role == STAYS else ())
        now += 0.5
    settle(rebuilt, end, WALL, start=now)
    assert log.codes() == published
