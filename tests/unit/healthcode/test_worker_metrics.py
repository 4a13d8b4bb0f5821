"""A worker's /metrics, as the bench and the tests read it (`healthcode.workers.Metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from healthcode.workers import Metrics


def test_metrics_are_read_by_name_and_labels_as_prometheus_client_writes_them() -> None:
    registry = CollectorRegistry()
    events = Counter("healthcode_events_in", "events", ["type"], registry=registry)
    events.labels("ping").inc(1200)
    events.labels("visit").inc(34)
    pause = Histogram("healthcode_snapshot_pause_seconds", "pause", registry=registry)
    pause.observe(0.25)
    pause.observe(0.5)

    metrics = Metrics.parse(generate_latest(registry).decode())

    assert metrics.value("healthcode_events_in_total", type="ping") == 1200
    assert metrics.total("healthcode_events_in_total") == 1234
    assert metrics.value("healthcode_snapshot_pause_seconds_count") == 2
    assert metrics.value("healthcode_snapshot_pause_seconds_sum") == 0.75
    assert metrics.value("healthcode_events_in_total", type="area_risk") == 0.0
    assert metrics.value("healthcode_snapshot_age_seconds", -1) == -1
