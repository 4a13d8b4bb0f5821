"""A rebuild reports each rejected input once: letters already on the dead-letter topic are
found, not sent again (with a bounded dead-letter retention configured, as `healthcode
worker` runs). What happens once retention deleted letters is in tests/unit/streams/test_letters.py:
the embedded broker never deletes anything."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from healthcode.broker import EmbeddedBroker
from streams.admin import create_topics
from streams.deadletter import read_letter
from streams.topics import Topics

DAY_S = 86_400


def _letters_through(bootstrap: str, topics: Topics, last: tuple[str, int, int]) -> list[tuple[str, int, int]]:
    """The positions of every letter on the dead-letter topic, read until the letter for `last`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topics.dead_letter, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    found: list[tuple[str, int, int]] = []
    try:
        # Bounded by the test timeout: the worker writes the letter once it reads the input.
        while last not in found:
            for records in consumer.poll(timeout_ms=500).values():
                letters = (read_letter(record.value) for record in records)
                found += [(letter.topic, letter.partition, letter.offset) for letter in letters if letter is not None]
    finally:
        consumer.close()
    return found


def test_a_rebuilt_worker_does_not_dead_letter_again_what_is_on_the_dead_letter_topic(
    broker: EmbeddedBroker, start_worker, unique: str, partitions: int
) -> None:
    topics = Topics(prefix=f"d{unique}.")
    create_topics(broker.bootstrap, topics, partitions=partitions, presence_retention_s=30 * DAY_S,
                  dead_letter_retention_s=DAY_S)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topics.visits, value=b"{not json", partition=0)
    producer.flush()

    first = start_worker(topics, f"g{unique}-first", dead_letter_retention_s=DAY_S)
    assert _letters_through(broker.bootstrap, topics, (topics.visits, 0, 0)) == [(topics.visits, 0, 0)]
    first.stop()

    producer.send(topics.visits, value=b'{"type": "visit"}', partition=0)
    producer.flush()
    producer.close()
    # A new group: the second worker rebuilds from the start of the visits and meets the
    # first bad visit again before the second one.
    second = start_worker(topics, f"g{unique}-second", dead_letter_retention_s=DAY_S)
    letters = _letters_through(broker.bootstrap, topics, (topics.visits, 0, 1))
    assert second.error is None
    assert letters == [(topics.visits, 0, 0), (topics.visits, 0, 1)]

