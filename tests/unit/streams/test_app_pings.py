"""A staged worker's pings: read through Faust's consumer group, set aside by its consumer in bulk
(not a Faust message each), and handed by the turn to the stays stage a batch at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from codes import Algorithm, generate_signing_key
from scoring.rules import load_rule_set
from streams.app import Pipeline
from streams.resume import STAYS
from streams.step import WorkerConfig
from streams.testing import MemoryLog, StepDriver
from streams.topics import Topics

from tests.unit.streams.conftest import _ping

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
TOPICS = Topics(prefix="t.")
AT = 1_650_000_000


def _pipeline(batch_size: int = 5000) -> Pipeline:
    key = generate_signing_key(Algorithm.EDDSA, 0, 2_000_000_000)
    return Pipeline(WorkerConfig(bootstrap="127.0.0.1:9", topics=TOPICS, group="g", rules=load_rule_set(RULES),
                                 keys=[key], partitions=2, stages=True, batch_size=batch_size,
                                 clock=lambda: AT + 3600.0))


def _records(topic: str, partition: int, offsets: range) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(topic, partition, offset, AT * 1000, 0, b"p", _ping("p", AT + offset), None, 1, 2, [])
            for offset in offsets]


class _Fetches:
    """The consumer thread's fetches: each answers with `answer`, and notes the partitions asked for."""

    def __init__(self, answer: dict[TP, list[Any]]) -> None:
        self.answer, self.asked = answer, []  # type: ignore[var-annotated]

    async def getmany(self, active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:
        self.asked.append(set(active_partitions))
        return dict(self.answer)


def test_the_consumer_sets_the_pings_of_a_fetch_aside_and_gives_faust_the_other_topics() -> None:
    async def fetched() -> Any:
        pipeline = _pipeline()
        pipeline.pings.restart({1: 0})  # as the rebuild of its assignment does
        visits = _records(TOPICS.visits, 0, range(0, 1))
        pipeline.app.consumer._thread = _Fetches(  # type: ignore[assignment]
            {TP(TOPICS.pings, 1): _records(TOPICS.pings, 1, range(0, 3)), TP(TOPICS.visits, 0): visits})
        given = await pipeline.app.consumer._getmany({TP(TOPICS.pings, 1), TP(TOPICS.visits, 0)}, 1.0)
        return given == {TP(TOPICS.visits, 0): visits}, [(r.partition, r.offset) for r in pipeline.pings.take(10)]

    assert asyncio.run(fetched()) == (True, [(1, 0), (1, 1), (1, 2)])


def test_while_a_batch_of_pings_is_held_the_consumer_fetches_the_other_topics_only() -> None:
    async def asked() -> Any:
        pipeline = _pipeline(batch_size=2)
        pipeline.pings.restart({0: 0})
        pipeline.pings.hold(pipeline.pings.ticket(), 0, _records(TOPICS.pings, 0, range(0, 2)))
        fetches = _Fetches({})
        pipeline.app.consumer._thread = fetches  # type: ignore[assignment]
        await pipeline.app.consumer._getmany({TP(TOPICS.pings, 0), TP(TOPICS.visits, 0)}, 1.0)
        # Only pings assigned: nothing is asked of the client (it takes no partitions for every one).
        await pipeline.app.consumer._getmany({TP(TOPICS.pings, 0)}, 1.0)
        pipeline.pings.take(1)
        await pipeline.app.consumer._getmany({TP(TOPICS.pings, 0), TP(TOPICS.visits, 0)}, 1.0)
        return fetches.asked

    assert asyncio.run(asked()) == [{TP(TOPICS.visits, 0)}, {TP(TOPICS.pings, 0), TP(TOPICS.visits, 0)}]


def test_faust_subscribes_the_pings_without_acking_them_and_its_agent_takes_the_other_partitioned_topics() -> None:
    # Acked, Faust would wait for a stream to take them and warn of partitions not committed.
    async def subscribed() -> Any:
        pipeline = _pipeline()
        await pipeline.app.on_start()
        names = await pipeline.app.topics._update_indices()
        [agent] = pipeline.app.agents.values()
        return sorted(names), pipeline.app.topics.acks_enabled_for(TOPICS.pings), sorted(agent.channel.topics)

    assert asyncio.run(subscribed()) == (
        [TOPICS.pings], False, sorted([TOPICS.visits, TOPICS.stays, TOPICS.exposures]))


def test_a_rebuild_drops_the_pings_held_and_holds_from_where_it_seeks_each_partition() -> None:
    async def held() -> Any:
        pipeline = _pipeline()
        pipeline.pings.restart({0: 0})
        pipeline.pings.hold(pipeline.pings.ticket(), 0, _records(TOPICS.pings, 0, range(0, 3)))
        before = pipeline.pings.ticket()

        async def build(owned: frozenset[int], starts: Any) -> Any:
            return starts

        pipeline._build = build  # type: ignore[method-assign]
        await pipeline.rebuild({TOPICS.pings: frozenset({0})}, {(TOPICS.pings, 0): 2})
        after_rebuild = len(pipeline.pings)
        pipeline.pings.hold(before, 0, _records(TOPICS.pings, 0, range(5, 7)))  # fetched before the seek
        pipeline.pings.hold(pipeline.pings.ticket(), 0, _records(TOPICS.pings, 0, range(0, 4)))
        return after_rebuild, [r.offset for r in pipeline.pings.take(10)]

    assert asyncio.run(held()) == (0, [2, 3])


def test_a_revocation_drops_the_pings_held() -> None:
    async def held() -> int:
        pipeline = _pipeline()
        pipeline.pings.restart({0: 0})
        pipeline.pings.hold(pipeline.pings.ticket(), 0, _records(TOPICS.pings, 0, range(0, 3)))
        assert len(pipeline.pings) == 3
        await pipeline._on_revoked(pipeline.app, set())
        return len(pipeline.pings)

    assert asyncio.run(held()) == 0


class _Wide:
    """The broadcast consumer with nothing to read."""

    def assignment(self) -> set[Any]:
        return set()

    async def getmany(self, **_: Any) -> dict[Any, Any]:
        return {}


def _turning(pipeline: Pipeline) -> Any:
    """`pipeline` with a staged scoring step and a stays stage for `pings` partition 0, and no broker."""
    log = MemoryLog(TOPICS, 2)
    pipeline.step = StepDriver(log, pipeline.config, frozenset({0, 1}), name=pipeline.name).step
    pipeline.stays = StepDriver(log, pipeline.config, frozenset({0}), role=STAYS).step

    pipeline._wide = _Wide()  # type: ignore[assignment]

    async def send(*_: Any) -> asyncio.Future[None]:
        sent = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return sent

    pipeline.app.producer.send = send  # type: ignore[method-assign]
    pipeline.pings.restart({0: 0})
    pipeline.pings.hold(pipeline.pings.ticket(), 0, _records(TOPICS.pings, 0, range(0, 3)))
    return pipeline.stays


def test_a_turn_hands_the_stays_stage_a_batch_of_the_pings_held_and_notes_them_read() -> None:
    async def turned() -> Any:
        pipeline = _pipeline(batch_size=2)
        stays = _turning(pipeline)
        await pipeline.turn()
        return stays.pings_processed, pipeline.read_through.get((TOPICS.pings, 0)), len(pipeline.pings), pipeline.more

    # The third is for the next turn, which does not wait for the broadcast topics.
    assert asyncio.run(turned()) == (2, 2, 1, True)


def test_a_turn_hands_the_stays_stage_no_pings_while_it_has_pings_left_to_feed() -> None:
    # What the stage holds stays about a batch however fast the consumer fetches.
    async def turned() -> Any:
        pipeline = _pipeline()
        stays = _turning(pipeline)
        pipeline.stays_more = True
        await pipeline.turn()
        return stays.pings_processed, len(pipeline.pings)

    assert asyncio.run(turned()) == (0, 3)
