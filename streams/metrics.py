"""Prometheus metrics of a worker (served on its web port at /metrics)."""

from __future__ import annotations

import time
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("healthcode_events_in", "Valid events consumed, by type", ["type"])


@lru_cache(maxsize=None)
def events_in(event_type: str) -> Counter:
    """The events-in counter of one type (looked up once: it is counted per event)."""
    return EVENTS_IN.labels(event_type)


STAGE_MESSAGES_PASSED_OVER = Counter(
    "healthcode_stage_messages_passed_over", "Messages on the stays or exposures topic that no stage sent, taken as nothing", ["topic"])
LATE_EVENTS = Counter("healthcode_late_events", "Events older than the watermark when they arrived")
CODES_ISSUED = Counter("healthcode_codes_issued", "Codes published on the codes topic, by level", ["level"])
CODES_SERVED = Counter("healthcode_codes_served", "Codes signed for residents who asked for theirs", ["level"])
WATERMARK_LAG = Gauge("healthcode_watermark_lag_seconds", "Newest event time seen minus the aligned watermark")
REBUILDS = Counter("healthcode_rebuilds", "Times the worker rebuilt its state from the start of its inputs")
RESUMES = Counter("healthcode_snapshot_resumes", "Times the worker resumed from a snapshot instead of rebuilding")
SNAPSHOT_AGE = Gauge("healthcode_snapshot_age_seconds",
                     "Seconds since the last snapshot this worker wrote or resumed from was taken (-1: none)")
SNAPSHOT_AGE.set(-1)
SNAPSHOT_PAUSE = Histogram(
    "healthcode_snapshot_pause_seconds", "Time a snapshot holds up the worker's turn (sends flushed, fences, pickling)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
SNAPSHOT_BYTES = Gauge("healthcode_snapshot_bytes", "Size of the state in the latest snapshot written")


def snapshot_taken(at: float) -> None:
    """The state held was in a snapshot taken at `at` (epoch seconds): its age from now on."""
    SNAPSHOT_AGE.set_function(lambda: time.time() - at)
BROKER_UP = Gauge("healthcode_broker_up", "1 while the broker answers the worker's metadata requests, else 0")
BROKER_DATA_LOSSES = Counter(
    "healthcode_broker_data_losses",
    "Times the broker was found to have lost data the worker had read (a topic gone, a log ending below what was read)",
)
LATENCY = Histogram(
    "healthcode_event_to_code_seconds",
    "Wall time from an event's arrival at the broker to the code it caused",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
