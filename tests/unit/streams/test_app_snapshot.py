"""The worker's snapshots: of the partitions it owns (never of a revoked step), and usable again after a resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from codes import Algorithm, generate_signing_key
from scoring.rules import load_rule_set
from streams.app import Pipeline, RebuildDeferred
from streams.resume import PRESENCE, STAGE, STAYS, restored
from streams.snapshots import unusable
from streams.step import WorkerConfig, WorkerView
from streams.testing import MemoryLog, StepDriver
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
TOPICS = Topics(prefix="t.")
OWNED = frozenset({0, 1})


def _pipeline(tmp_path: Path, stages: bool = False) -> tuple[Pipeline, WorkerConfig]:
    key = generate_signing_key(Algorithm.EDDSA, 0, 2_000_000_000)
    config = WorkerConfig(bootstrap="127.0.0.1:9", topics=TOPICS, group="g", rules=load_rule_set(RULES), keys=[key],
                          partitions=2, data_dir=tmp_path, snapshot_every_s=1.0, clock=lambda: 1_700_000_000.0,
                          stages=stages)
    pipeline = Pipeline(config)
    pipeline.step = StepDriver(MemoryLog(TOPICS, 2), config, OWNED, name=pipeline.name).step
    pipeline.snapshots.due_at = 0.0
    return pipeline, config


def test_no_snapshot_is_taken_of_a_step_whose_partitions_were_revoked(tmp_path: Path) -> None:
    # Its state would be filed as a worker's owning nothing, and a step owning nothing resumed from it.
    async def taken() -> Any:
        pipeline, _ = _pipeline(tmp_path)
        await pipeline._on_revoked(pipeline.app, set())
        return await pipeline.snapshots.take(pipeline._steps())

    assert asyncio.run(taken()) == []


def test_partitions_revoked_while_a_snapshot_writes_its_fences_leave_it_a_snapshot_of_the_owned_step(
    tmp_path: Path,
) -> None:
    async def taken() -> Any:
        pipeline, config = _pipeline(tmp_path)

        async def send(*_: Any) -> asyncio.Future[None]:
            # The rebalance runs while the turn waits for the producer.
            await pipeline._on_revoked(pipeline.app, set())
            return asyncio.get_running_loop().create_future()

        pipeline.app.producer.send = send  # type: ignore[method-assign]
        [pending] = await pipeline.snapshots.take(pipeline._steps())
        step = restored(pending.snapshot.state, config, WorkerView(), "w", 0.0)
        return pending.owned, sorted(pending.fences), step.owned, pending.snapshot.made_by == pipeline.snapshots.made_by(STAGE, OWNED)

    assert asyncio.run(taken()) == (OWNED, [0, 1], OWNED, True)


def test_a_staged_worker_snapshots_each_stage_apart_and_fences_only_the_codes_the_scoring_step_sends(
    tmp_path: Path,
) -> None:
    async def taken() -> Any:
        pipeline, config = _pipeline(tmp_path, stages=True)
        log = MemoryLog(TOPICS, 2)
        pipeline.stays = StepDriver(log, config, frozenset({1}), role=STAYS).step
        pipeline.regions = StepDriver(log, config, frozenset({0}), role=PRESENCE).step

        async def send(*_: Any) -> asyncio.Future[None]:
            return asyncio.get_running_loop().create_future()

        pipeline.app.producer.send = send  # type: ignore[method-assign]
        return await pipeline.snapshots.take(pipeline._steps())

    pending = asyncio.run(taken())
    assert [(each.stage, each.owned, sorted(each.fences)) for each in pending] == [
        (STAYS, frozenset({1}), []), (PRESENCE, frozenset({0}), []), (STAGE, OWNED, [0, 1])]
    assert len({each.snapshot.made_by for each in pending}) == 3, "a stage's snapshot is resumed as that stage only"


def test_a_snapshot_taken_after_a_resume_is_usable_though_some_partitions_were_not_read_since(tmp_path: Path) -> None:
    # The areas partition is read before the first snapshot and never again: the second must still
    # say which record precedes its offset there.
    async def taken() -> Any:
        pipeline, config = _pipeline(tmp_path)
        log = MemoryLog(TOPICS, 2)
        log.append(TOPICS.areas, None, b'{"type": "area"}', 0)
        driver = StepDriver(log, config, OWNED, name=pipeline.name)
        driver.turn(0.0, 1_700_000_000.0)
        first = driver.snapshot(pipeline.snapshots.made_by(STAGE, OWNED))
        step = restored(first.state, config, pipeline.view, pipeline.name, 1.0)
        pipeline._resumed([(STAGE, step, first)])
        ping = log.append(TOPICS.pings, b"p-1", b'{"type": "ping"}', 0)
        pipeline._saw([ping])
        step.take([ping], 2.0, 1_700_000_000.0)

        async def send(*_: Any) -> asyncio.Future[None]:
            return asyncio.get_running_loop().create_future()

        pipeline.app.producer.send = send  # type: ignore[method-assign]
        pipeline.snapshots.due_at = 0.0
        [pending] = await pipeline.snapshots.take(pipeline._steps())
        second = pending.snapshot
        return first, second, unusable(second, pipeline.snapshots.made_by(STAGE, OWNED), log.facts(second.offsets))

    first, second, reason = asyncio.run(taken())
    assert first.offsets[(TOPICS.areas, 0)] == second.offsets[(TOPICS.areas, 0)] == 1
    assert second.offsets[(TOPICS.pings, 0)] == first.offsets[(TOPICS.pings, 0)] + 1
    assert reason is None


def test_a_snapshot_directory_the_worker_may_not_list_means_a_rebuild_not_a_crash(
    tmp_path: Path, monkeypatch: Any, caplog: Any,
) -> None:
    # The error would escape into Faust's seek_to_committed on every assignment.
    pipeline, _ = _pipeline(tmp_path)
    directory = pipeline.snapshots.store(STAGE, OWNED).directory
    directory.mkdir(parents=True)
    listing = Path.iterdir

    def iterdir(path: Path) -> Any:
        if path == directory:
            raise PermissionError(13, "Permission denied")
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert asyncio.run(pipeline._resume(OWNED, None)) is None  # type: ignore[arg-type]
    assert "cannot list the snapshots" in caplog.text and "Permission denied" in caplog.text


def test_after_a_revocation_no_turn_or_probe_asks_the_consumer_for_the_end_of_a_partition_it_gave_up(
    tmp_path: Path,
) -> None:
    # aiokafka asserts a partition is assigned before it tells its end; between a revocation and
    # the next assignment's rebuild, the turns and the probe go on (the step disowned, not gone).
    async def ends() -> Any:
        pipeline, config = _pipeline(tmp_path, stages=True)
        pipeline.assigned = {topic: OWNED for topic in pipeline.partitioned_topics()}
        assigned: set[Any] = set()

        def highwater(tp: Any) -> int:
            assert tp in assigned, "Partition is not assigned"
            return 0

        pipeline.app.consumer.highwater = highwater  # type: ignore[method-assign]
        pipeline.app.consumer.answered_ms = lambda tp: None  # type: ignore[method-assign]
        pipeline._wide = type("Wide", (), {"assignment": lambda self: set()})()  # the broadcast partitions: none here
        await pipeline._on_revoked(pipeline.app, set())
        pipeline._check_log_ends()
        return pipeline._ends()

    assert asyncio.run(ends()) == {}


def test_a_resume_deferred_after_the_scoring_step_was_restored_leaves_the_worker_not_ready(tmp_path: Path) -> None:
    # The scoring step's snapshot restored shows itself in the view; the broker then stops answering
    # while the stays stage's is checked: the worker holds no step, and must not say it is ready.
    async def deferred() -> Any:
        pipeline, config = _pipeline(tmp_path, stages=True)
        log = MemoryLog(TOPICS, 2)
        driver = StepDriver(log, config, OWNED, name=pipeline.name)
        snapshot = driver.snapshot(pipeline.snapshots.made_by(STAGE, OWNED))

        async def latest(stage: str, owned: frozenset[int], kind: type) -> Any:
            if stage == STAGE:
                return restored(snapshot.state, config, pipeline.view, pipeline.name, 1.0), snapshot
            raise RebuildDeferred("the broker does not answer")

        async def missing() -> list[str]:
            return []

        async def wide() -> Any:
            return None

        pipeline.snapshots.latest = latest  # type: ignore[method-assign]
        pipeline._missing_topics = missing  # type: ignore[method-assign]
        pipeline._wide_consumer = wide  # type: ignore[method-assign]
        pipeline.may_resume = True
        await pipeline.rebuild({topic: OWNED for topic in pipeline.partitioned_topics()}, {})
        return pipeline.step, pipeline.rebuild_pending, pipeline.view.ready, pipeline.view.owned

    assert asyncio.run(deferred()) == (None, True, False, frozenset())


def test_a_rebuild_on_a_new_rule_set_seeks_with_the_fetcher_stopped_and_starts_it_again(tmp_path: Path) -> None:
    # Faust's fetcher notes as read every record of the batch it is handing on; a seek to the start
    # meanwhile has the records it asks for dropped up to there, and a stage never gets its first
    # record (the stages stalled after a rule set was published). Stopped, the fetcher leaves the batch.
    async def seek() -> Any:
        pipeline, _ = _pipeline(tmp_path, stages=True)
        consumer = pipeline.app.consumer
        flowing: list[bool] = []

        async def perform_seek() -> None:
            flowing.append(consumer.flow_active)

        consumer.perform_seek = perform_seek  # type: ignore[method-assign]
        pipeline.rebuild_pending = True
        await pipeline.turn()
        return flowing, consumer.flow_active

    assert asyncio.run(seek()) == ([False], True)
