"""Live mode (`HEALTHCODE_LIVE=true`: event time is the wall clock), on an embedded broker this bench starts.

A few persons' past hour of pings is published, a worker started;
then, at the wall clock, one of them tests positive and another visits a fever clinic. Printed: a transcript (each code on the codes topic with its
Kafka timestamp) and per kind the latency from the deciding event's publication (a
contact's from its case's test).

    .venv/bin/python -m bench.live                  # wait up to 60 s for every raised code
    .venv/bin/python -m bench.live --live-wait 120
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np

from bench._pipeline import (
    KINDS, PARTITIONS, bench_topics, code_kinds, read_code_records, scratch_broker, signing_key, spread,
    worker_config,
)
from codes import SigningKey
from scoring.timeutil import format_rfc3339
from simulators.publish import route
from streams.admin import create_topics
from streams.testing import BackgroundWorker


def live_events(start: int) -> tuple[list[bytes], list[str]]:
    """A few persons in live mode: the past hour's pings (published before the worker starts) and the
    close contacts' names. Three persons spend 40 minutes, 90 to 50 minutes ago, in one ~100 m place
    (close contacts if one is a case), a fourth is elsewhere. The decisive events (`decisive`) come
    later, stamped with the wall clock when published: the first tests positive, a fifth visits a
    fever clinic.
    """
    from scoring.events import Ping, encode_event

    def ping(index: int, person: str, at: int, lat: float, lon: float) -> bytes:
        moment = datetime.fromtimestamp(at, timezone.utc)
        return encode_event(Ping(event_id=f"live-ping-{person}-{index}", ts=moment, person=person,
                                 lat=lat, lon=lon, source="gps"))

    history = []
    for index, at in enumerate(range(start - 5400, start - 3000, 60)):
        for person in ("p-live-case", "p-live-near-1", "p-live-near-2"):
            history.append(ping(index, person, at, 31.2304, 121.4737))
        history.append(ping(index, "p-live-far", at, 31.3304, 121.5737))
    return history, ["p-live-near-1", "p-live-near-2"]


def live_ping(person: str, now: float) -> bytes:
    """A ping of `person` far from everyone, stamped `now` (the wall clock)."""
    from scoring.events import Ping, encode_event

    moment = datetime.fromtimestamp(int(now), timezone.utc)
    return encode_event(Ping(event_id=f"live-{person}-{now:.3f}", ts=moment, person=person,
                             lat=31.3304, lon=121.5737, source="gps"))


def decisive(person: str, kind: str, at: int) -> bytes:
    """A positive PCR (sampled an hour before) or a fever clinic visit, at wall-clock time `at`."""
    from scoring.events import TestResult, Visit, encode_event

    moment = datetime.fromtimestamp(at, timezone.utc)
    if kind == "positive":
        sampled = datetime.fromtimestamp(at - 3600, timezone.utc)
        return encode_event(TestResult(event_id=f"live-test-{person}-{at}", ts=moment, person=person,
                                       sampled_at=sampled, test="pcr", result="positive"))
    return encode_event(Visit(event_id=f"live-visit-{person}-{at}", ts=moment, person=person,
                              facility="clinic-1", kind="fever_clinic"))


def live(bootstrap: str, key: SigningKey, wait_s: float) -> None:
    """Live mode (`HEALTHCODE_LIVE=true`): event time is the wall clock; print a transcript and latencies."""
    from kafka import KafkaProducer

    topics = bench_topics("live")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    config = replace(worker_config(bootstrap, topics, key), live=True)
    start = int(time.time())
    history, contacts = live_events(start)
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="bench-live", acks=1, linger_ms=0)
    for line in history:
        where = route(line, topics)
        producer.send(where.topic, key=where.key, value=line)
    producer.flush()
    running = BackgroundWorker(config)
    sent: dict[str, tuple[str, float]] = {}
    try:
        running.wait_until(lambda w: w.view.ready and w.view.watermark >= start - 3000, timeout=60)
        time.sleep(3.0)  # quiet, settled: what follows is what the decisive events cause
        for person, kind in (("p-live-case", "positive"), ("p-live-fever", "fever")):
            at = int(time.time())
            line = decisive(person, kind, at)
            where = route(line, topics)
            stamp = time.time()
            producer.send(where.topic, key=where.key, value=line, timestamp_ms=int(stamp * 1000))
            producer.flush()
            sent[person] = (kind, stamp)
            print(f"  {_clock(stamp)} published {kind} for {person} (event time {format_rfc3339(at)})")
            time.sleep(1.0)
        deadline = time.monotonic() + wait_s
        wanted = {"p-live-case", "p-live-fever", *contacts}
        while time.monotonic() < deadline:
            shown = {person for person, record in running.view.codes.items() if record["level"] != "green"}
            if wanted <= shown:
                break
            # Pings keep flowing, as in a city: no input partition falls idle and jumps to its newest time.
            for person in ("p-live-far", "p-live-elsewhere"):
                line = live_ping(person, time.time())
                where = route(line, topics)
                producer.send(where.topic, key=where.key, value=line)
            time.sleep(0.2)
    finally:
        running.stop()
        producer.close()
    records = read_code_records(bootstrap, topics)
    case_stamp = sent["p-live-case"][1]
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for (record, stamp), kind in zip(records, code_kinds(records)):
        origin = sent.get(record["person"], (None, case_stamp))[1]
        latency_s = stamp / 1000 - origin
        by_kind[kind].append(latency_s * 1000)
        print(f"  {_clock(stamp / 1000)} hc.codes {record['person']}: {record['level']} from "
              f"{record['assessed_at']} ({', '.join(r['rule'] for r in record['reasons']) or 'no reason'}; "
              f"{kind}, {latency_s:.3f} s after its deciding event was published)")
    missing = sorted(wanted - {record["person"] for record, _ in records if record["level"] != "green"})
    if missing:
        print(f"  no raised code within {wait_s:.0f} s for: {', '.join(missing)}")
    for kind in KINDS[:4]:
        spread(f"live {kind}", np.array(by_kind[kind]))


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="accepted for `python -m bench --quick`; the same run")
    parser.add_argument("--live-wait", type=float, default=60.0,
                        help="how long to wait for every raised code (seconds)")
    args = parser.parse_args(argv)
    with scratch_broker() as (_, broker):
        print("[live] HEALTHCODE_LIVE=true, events stamped with the wall clock (UTC):")
        live(broker.bootstrap, signing_key(), args.live_wait)


if __name__ == "__main__":
    main()
