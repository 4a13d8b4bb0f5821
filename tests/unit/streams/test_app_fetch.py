"""The worker's Kafka consumers answer quickly when a partition is quiet (the watermarks follow their answers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from codes import Algorithm, generate_signing_key
from scoring.rules import load_rule_set
from streams.app import FETCH_WAIT_MS, Pipeline
from streams.step import WorkerConfig
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"


def test_the_visits_consumer_lets_the_broker_hold_an_empty_fetch_no_longer_than_the_broadcast_one() -> None:
    # A quiet visits partition counts as caught up only as far as the answer before its latest
    # vouches; Faust's own 1.5 s hold kept every watermark about 2 s of wall time behind.
    async def created() -> int:
        key = generate_signing_key(Algorithm.EDDSA, 0, 2_000_000_000)
        config = WorkerConfig(bootstrap="127.0.0.1:9", topics=Topics(prefix="t."), group="g",
                              rules=load_rule_set(RULES), keys=[key], partitions=2)
        pipeline = Pipeline(config)
        consumer = pipeline.app.consumer._thread._create_worker_consumer(pipeline.app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(created()) == FETCH_WAIT_MS
