"""The stream's level timeline equals replay's on the same events, faults included."""

from __future__ import annotations

import time

from kafka.admin import KafkaAdminClient

from healthcode.broker import EmbeddedBroker
from streams.codes_reader import distinct_changes, read_codes
from streams.issuing import timeline_entry
from streams.reading import read_from_start
from streams.testing import assert_each_record_changes_what_is_shown


def test_one_worker_publishes_exactly_the_replay_timeline(
    broker: EmbeddedBroker, published_city, replayed, start_worker, unique
) -> None:
    expected = replayed
    last_event = max(c.at for c in expected.timeline)
    worker = start_worker(published_city.topics, f"g{unique}")
    worker.wait_settled(last_event)
    records = list(read_codes(broker.bootstrap, published_city.topics, idle_s=2.0))
    streamed = [timeline_entry(r) for r in distinct_changes(records)]
    assert_each_record_changes_what_is_shown(records)
    assert streamed == [c.to_json() for c in expected.timeline]


def test_the_group_commits_its_positions_so_standard_tools_show_its_lag(
    broker: EmbeddedBroker, published_city, replayed, start_worker, unique
) -> None:
    group = f"g{unique}"
    worker = start_worker(published_city.topics, group, commit_interval_s=0.5)
    worker.wait_settled(max(c.at for c in replayed.timeline))
    visits = sum(1 for _ in read_from_start(broker.bootstrap, published_city.topics.visits, idle_s=1.0))
    deadline = time.monotonic() + 10
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        while True:
            committed = admin.list_group_offsets(group)[group]
            done = sum(meta.offset for tp, meta in committed.items() if tp.topic == published_city.topics.visits)
            if done == visits or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        admin.close()
    assert done == visits
