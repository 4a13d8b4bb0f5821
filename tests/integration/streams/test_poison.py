"""A stranger's bytes on an internal topic must not stop the pipeline."""

from __future__ import annotations

import time

from kafka import KafkaProducer

from healthcode.broker import EmbeddedBroker
from streams.admin import create_topics
from streams.topics import Topics


def test_a_worker_keeps_going_past_bytes_on_its_internal_topics_that_it_did_not_write(
    broker: EmbeddedBroker, start_worker, unique: str, partitions: int
) -> None:
    topics = Topics(prefix=f"p{unique}.")
    create_topics(broker.bootstrap, topics, partitions=partitions)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    strangers = (b"\xff not json", b'{"no": "type"}', b"[1, 2]", b'{"type": "case", "partition": 0}',
                 b'{"type": "progress", "partition": 0, "through": "soon"}', b'{"type": "code", "change_id": "x"}')
    for stranger in strangers:
        producer.send(topics.cases, value=stranger)
        for partition in range(partitions):
            producer.send(topics.codes, value=stranger, partition=partition)
    producer.flush()
    producer.close()

    worker = start_worker(topics, f"g{unique}")
    ready_by = time.monotonic() + 20
    while not worker.view.ready:
        assert worker.error is None, f"the worker stopped: {worker.error!r}"
        assert time.monotonic() < ready_by, "the worker never became ready"
        time.sleep(0.2)
    # Ready means assigned: the cases topic is read from there on.
    time.sleep(3.0)
    assert worker.error is None, f"the worker stopped: {worker.error!r}"
