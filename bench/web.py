"""Web load against scoring: how long a worker takes to settle a day of events while 200
clients ask its web port for QR images, against the same worker with no web load, in
one run on an embedded broker this bench starts itself.

A simulated outbreak city (`bench.stream.outbreak`: 1,000 residents x 1 day; quick:
300) is published once and settled once by a worker, so the residents whose level
changed (most of them) have a code on the codes topic. Each measured run then starts a
fresh worker (its own consumer group) serving its web app on the same event loop, as
`healthcode worker --web-port` does. The rebuild loads every published code, so image
requests find a code from the start, and then settles the whole day again (publishing
nothing new). Timed: from the worker being ready (group joined, codes loaded) until it
has settled through the newest event time, which includes the same 2 s idle timeout in
every run. In a loaded run another process runs 200 concurrent clients, each asking
again as soon as it has an answer for the PNG of a random resident with a code (after
a 429 it waits its Retry-After, unless the run says the clients ignore it), and asks
/healthz every 100 ms.

Each loaded run follows a run with no web load (its baseline: other work on a shared
machine comes and goes): images rendered on the event loop as `streams/web.py` did
before (`render_qr` in the request handler, `on_loop_app`); rendering in a thread pool
and in a separate process (`streams.images.CodeImages`), without the cache so that
every request renders; and the default (a process, the cache on). A loaded run is
stopped at 12 times its baseline.

    .venv/bin/python -m bench.web            # 1,000 residents x 1 day
    .venv/bin/python -m bench.web --quick    # 300 residents x 1 day
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientSession, TCPConnector, web
from prometheus_client import REGISTRY

from bench.stream import _NewestOnly, _topics, _worker_config, outbreak
from codes import Algorithm, SigningKey, generate_signing_key, render_qr
from healthcode.broker import EmbeddedBroker
from simulators.output import write_run
from simulators.publish import KafkaSink, Publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.images import CodeImages
from streams.web import make_app
from streams.worker import Worker, WorkerConfig, WorkerView

PARTITIONS = 4
CLIENTS = 200
HEALTH_EVERY_S = 0.1
LIMIT = 12
"""A run is stopped after this many times the baseline's settle time."""
AppFactory = Callable[[WorkerView], web.Application]


def on_loop_app(view: WorkerView) -> web.Application:
    """The image path as it was before `streams.images`: render_qr inside the request handler."""

    async def person_code(request: web.Request) -> web.Response:
        record = view.codes.get(request.match_info["pseudonym"])
        if record is None:
            return web.json_response({"error": "no code"}, status=404)
        return web.Response(body=render_qr(record["code"], "png"), content_type="image/png")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ready": view.ready})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/persons/{pseudonym}/code", person_code)
    return app


def _threads() -> Executor:
    return ThreadPoolExecutor(max_workers=2)


@dataclass(frozen=True)
class Variant:
    label: str
    app: AppFactory | None
    """None: no web port and no web load (the baseline)."""
    honour_retry: bool = True


def _images(**options: Any) -> AppFactory:
    return lambda view: make_app(view, PARTITIONS, CodeImages(**options))


BASELINE = Variant("no web load", None)
LOADED = (
    Variant("rendered on the event loop (before)", on_loop_app),
    Variant("thread pool (2 threads), no cache", _images(executor=_threads, cache_size=0)),
    Variant("rendering process, no cache", _images(cache_size=0)),
    Variant("rendering process, no cache, clients ignore Retry-After", _images(cache_size=0), honour_retry=False),
    Variant("default: rendering process, cache", _images()),
)


@dataclass
class Load:
    statuses: dict[int, int]
    health_ms: list[float]


async def _clients(port: int, persons: list[str], honour_retry: bool, stop: Any) -> Load:
    statuses: Counter[int] = Counter()
    health_ms: list[float] = []
    base = f"http://127.0.0.1:{port}"
    async with ClientSession(connector=TCPConnector(limit=0)) as session:

        async def client(seed: int) -> None:
            chosen = random.Random(seed)
            while not stop.is_set():
                url = f"{base}/persons/{chosen.choice(persons)}/code?format=png"
                async with session.get(url) as answer:
                    await answer.read()
                    statuses[answer.status] += 1
                    wait = float(answer.headers.get("Retry-After", 0)) if honour_retry else 0.0
                if wait:
                    await asyncio.sleep(wait)

        async def prober() -> None:
            while not stop.is_set():
                start = time.perf_counter()
                async with session.get(f"{base}/healthz") as answer:
                    await answer.read()
                health_ms.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(HEALTH_EVERY_S)

        await asyncio.gather(prober(), *(client(n) for n in range(CLIENTS)))
    return Load(dict(statuses), health_ms)


def _load_process(port: int, persons: list[str], honour_retry: bool, stop: Any, results: Any) -> None:
    """The clients, in a process of their own so that they do not share the worker's GIL."""
    load = asyncio.run(_clients(port, persons, honour_retry, stop))
    # Plain values: run as `python -m bench.web`, this module is `__mp_main__` in here.
    results.put((load.statuses, load.health_ms))


class Served:
    """A worker and, optionally, its web app on one event loop in a thread (as the CLI runs them)."""

    def __init__(self, config: WorkerConfig, app: AppFactory | None) -> None:
        self.worker = Worker(config)
        self.port = 0
        self.error: BaseException | None = None
        self._app = app
        self._stop = asyncio.Event()
        self._listening = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)
        self._thread.start()
        self._listening.wait(timeout=30)

    async def _serve(self) -> None:
        runner = None
        try:
            if self._app is not None:
                runner = web.AppRunner(self._app(self.worker.view))
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                self.port = runner.addresses[0][1]
            self._listening.set()
            await self.worker.run(self._stop)
        except BaseException as error:  # reported by `wait_until` on the bench thread
            self.error = error
            self._listening.set()
        finally:
            if runner is not None:
                await runner.cleanup()

    def wait_until(self, done: Callable[[Worker], bool], timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.error is not None:
                raise RuntimeError(f"the worker failed: {self.error!r}") from self.error
            if done(self.worker):
                return time.perf_counter()
            time.sleep(0.02)
        raise TimeoutError(f"the worker did not get there within {timeout:.0f} s")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)


@dataclass
class Outcome:
    settle_s: float | None
    """None: not settled within the run's time limit."""
    rebuilds: int
    """Rebuilds after the first: the group dropped the worker (missed heartbeats) and it started over."""
    load: Load | None
    coded: list[str]
    """The persons with a code when it settled."""


def _rebuilds() -> float:
    return REGISTRY.get_sample_value("healthcode_rebuilds_total") or 0.0


def measure(config: WorkerConfig, newest: int, variant: Variant, persons: list[str], limit_s: float) -> Outcome:
    served = Served(replace(config, group=f"{config.group}-{uuid.uuid4().hex[:6]}"), variant.app)
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    clients = None
    try:
        ready = served.wait_until(lambda w: w.view.ready and len(w.view.codes) >= len(persons), timeout=120)
        rebuilds = _rebuilds()
        if variant.app is not None:
            clients = context.Process(
                target=_load_process, args=(served.port, persons, variant.honour_retry, stop, results), daemon=True
            )
            clients.start()
        try:
            settle_s: float | None = served.wait_until(lambda w: w.final_at >= newest, timeout=limit_s) - ready
        except TimeoutError:
            settle_s = None
        rebuilt = int(_rebuilds() - rebuilds)
        load = None
        if clients is not None:
            stop.set()
            load = Load(*results.get(timeout=120))
            clients.join(timeout=30)
        return Outcome(settle_s, rebuilt, load, sorted(served.worker.view.codes))
    finally:
        stop.set()
        if clients is not None and clients.is_alive():
            clients.kill()
        served.stop()


def _publish_city(bootstrap: str, residents: int, directory: Path) -> tuple[Any, int, int]:
    topics = _topics("web")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    sink = KafkaSink(bootstrap)
    pacer = _NewestOnly(None)
    publisher = Publisher(sink.send, topics, pacer)
    try:
        write_run(Simulation(outbreak(residents)), directory, also=publisher.publish_chunk)
    finally:
        sink.close()
    return topics, sum(publisher.sent.values()), pacer.newest


def run(bootstrap: str, residents: int, key: SigningKey, directory: Path) -> list[str]:
    topics, events, newest = _publish_city(bootstrap, residents, directory)
    config = replace(_worker_config(bootstrap, topics, key), partitions=PARTITIONS)
    primed = measure(config, newest, BASELINE, [], limit_s=600)
    if primed.settle_s is None:
        raise RuntimeError("the first worker did not settle the city within 600 s")
    persons = primed.coded
    lines = [
        f"city: {residents:,} residents x 1 day, {events:,} events, {len(persons):,} residents with a code; "
        f"first settle {primed.settle_s:.2f} s (not compared: it also publishes the codes)",
        f"{CLIENTS} concurrent clients asking for PNG codes; settle time from ready to settled through the newest event",
        "(each loaded run right after its own no-load baseline: other work on this machine comes and goes)",
    ]
    print("\n".join(lines), flush=True)
    for variant in LOADED:
        baseline = measure(config, newest, BASELINE, persons, limit_s=600).settle_s
        if baseline is None:
            raise RuntimeError("a worker with no web load did not settle the city within 600 s")
        # Stopped at LIMIT times the baseline: rendering on the loop can starve the group
        # heartbeat, and a worker dropped from its group starts over.
        outcome = measure(config, newest, variant, persons, limit_s=LIMIT * baseline)
        line = f"  {variant.label:<56} baseline {baseline:6.2f} s, loaded "
        line += (f"{outcome.settle_s:6.2f} s  ratio {outcome.settle_s / baseline:5.2f}" if outcome.settle_s is not None
                 else f"NOT settled in {LIMIT * baseline:.0f} s (ratio > {LIMIT})")
        line += f"  rebuilds {outcome.rebuilds}"
        assert outcome.load is not None
        statuses, health = outcome.load.statuses, np.array(outcome.load.health_ms)
        served = statuses.get(200, 0) / (outcome.settle_s or LIMIT * baseline)
        line += f"  | PNG 200 {statuses.get(200, 0):>6,} ({served:,.1f}/s), 429 {statuses.get(429, 0):>6,}  | /healthz "
        line += (f"p50 {np.percentile(health, 50):6.1f} ms, max {health.max():7.1f} ms ({health.size} answers)"
                 if health.size else "never answered")
        print(line, flush=True)
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 residents x 1 day")
    parser.add_argument("--out", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    now = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, now - 3600, now + 30 * 86400)
    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker(log_dir=Path(scratch)) as broker:
        lines = run(broker.bootstrap, 300 if args.quick else 1_000, key, Path(scratch) / "city")
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
