"""Web load against scoring: how long a worker takes to settle a day of events while 200
clients ask its web port for QR images, against the same worker with no web load, in
one run on an embedded broker this bench starts itself.

A simulated outbreak city (`bench._pipeline.outbreak`: 1,000 residents x 1 day; quick:
300) is published once and settled once by a worker, so the residents whose level
changed (most of them) have a code on the codes topic. Each measured run then starts a
fresh worker (its own consumer group) serving its web app on the same event loop, as
`healthcode worker --web-port` does. The rebuild loads every published code, so image
requests find a code from the start, and then settles the whole day again (publishing
nothing new). Timed: from the worker being ready (group joined, codes loaded) until it
has settled through the newest event time, which includes the same 2 s idle timeout in
every run. In every run another process asks /healthz every 100 ms; in a loaded run a
third one runs 200 concurrent clients, each asking again as soon as it has an answer for
the PNG of a random resident with a code (after a 429 it waits its Retry-After, unless
the run says the clients ignore it).

Each loaded run follows a run with no image requests (its baseline: other work on a shared
machine comes and goes): images rendered on the event loop as `streams/web.py` did
before (`render_qr` in the request handler, `on_loop_app`); rendering in a thread pool
and in a separate process (`streams.images.CodeImages`), without the cache so that
every request renders; and the default (a process, the cache on). A loaded run is
stopped at 6 times its baseline.

Then, without Kafka, the loop's share of the CPU: how many 1 ms slices of pure-Python
work (a stand-in for scoring) the event loop completes in 4 s while 8 clients keep PNG
renders going on the loop, in a thread pool or in the rendering process, against as
many seconds with no renders just before.

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

from bench._pipeline import NewestOnly, bench_topics, outbreak, worker_config
from codes import Algorithm, SigningKey, generate_signing_key, render_qr
from codes.access import RatePolicy, resident_token
from healthcode.broker import EmbeddedBroker
from simulators.output import write_run
from simulators.publish import KafkaSink, Publisher
from simulators.run import Simulation
from streams.admin import create_topics
from streams.images import CodeImages, render_process
from streams.web import make_app
from streams.step import WorkerConfig, WorkerView
from streams.testing import BackgroundWorker

PARTITIONS = 4
CLIENTS = 200
HEALTH_EVERY_S = 0.1
LIMIT = 6
"""A run is stopped after this many times the baseline's settle time."""
AppFactory = Callable[[WorkerView, WorkerConfig], web.Application]
SECRET = bytes(32)
"""The resident secret of the bench's workers: clients ask with each resident's own token."""
UNLIMITED = RatePolicy(per_minute=10**9, burst=10**6)


def on_loop_app(view: WorkerView, config: WorkerConfig) -> web.Application:
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
    app.router.add_get("/residents/{pseudonym}/code", person_code)
    return app


def _threads() -> Executor:
    return ThreadPoolExecutor(max_workers=2)


@dataclass(frozen=True)
class Variant:
    label: str
    app: AppFactory
    clients: int = CLIENTS
    """Image clients; /healthz is asked every HEALTH_EVERY_S in every run."""
    honour_retry: bool = True


def _images(**options: Any) -> AppFactory:
    return lambda view, config: make_app(view, config, CodeImages(**options))


BASELINE = Variant("no image requests", _images(), clients=0)
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


async def _clients(port: int, persons: list[str], clients: int, honour_retry: bool, probe: bool, stop: Any) -> Load:
    statuses: Counter[int] = Counter()
    health_ms: list[float] = []
    base = f"http://127.0.0.1:{port}"
    tokens = {person: resident_token(SECRET, person) for person in persons}
    async with ClientSession(connector=TCPConnector(limit=0)) as session:

        async def client(seed: int) -> None:
            chosen = random.Random(seed)
            while not stop.is_set():
                person = chosen.choice(persons)
                url = f"{base}/residents/{person}/code?format=png"
                async with session.get(url, headers={"Authorization": f"Bearer {tokens[person]}"}) as answer:
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

        await asyncio.gather(*([prober()] if probe else []), *(client(n) for n in range(clients)))
    return Load(dict(statuses), health_ms)


def _load_process(
    port: int, persons: list[str], clients: int, honour_retry: bool, probe: bool, stop: Any, results: Any
) -> None:
    """Clients in a process of their own, so that they do not share the worker's GIL; the
    /healthz prober in another, so that busy image clients do not delay its answers."""
    load = asyncio.run(_clients(port, persons, clients, honour_retry, probe, stop))
    # Plain values: run as `python -m bench.web`, this module is `__mp_main__` in here.
    results.put((load.statuses, load.health_ms))


class Served(BackgroundWorker):
    """A worker and its web app on one event loop in a thread (as the CLI runs them)."""

    def __init__(self, config: WorkerConfig, app: AppFactory) -> None:
        self.port = 0
        self._app = app
        self._listening = threading.Event()
        super().__init__(config)
        self._listening.wait(timeout=30)

    async def _serve(self) -> None:
        runner = web.AppRunner(self._app(self.pipeline.view, self.config))
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self._listening.set()
            await super()._serve()
        finally:
            self._listening.set()
            await runner.cleanup()


@dataclass
class Outcome:
    settle_s: float | None
    """None: not settled within the run's time limit."""
    rebuilds: int
    """Rebuilds after the first: the group dropped the worker (missed heartbeats) and it started over."""
    load: Load
    coded: list[str]
    """The persons with a code when it settled."""


def _rebuilds() -> float:
    return REGISTRY.get_sample_value("healthcode_rebuilds_total") or 0.0


def measure(config: WorkerConfig, newest: int, variant: Variant, persons: list[str], limit_s: float) -> Outcome:
    served = Served(replace(config, group=f"{config.group}-{uuid.uuid4().hex[:6]}"), variant.app)
    context = multiprocessing.get_context("spawn")
    stop, images, health = context.Event(), context.Queue(), context.Queue()
    processes = [
        context.Process(
            target=_load_process, args=(served.port, persons, clients, variant.honour_retry, probe, stop, out), daemon=True
        )
        for clients, probe, out in ((variant.clients, False, images), (0, True, health))
    ]
    try:
        ready = served.wait_until(lambda w: w.view.ready and len(w.view.codes) >= len(persons), timeout=120)
        rebuilds = _rebuilds()
        for process in processes:
            process.start()
        try:
            settle_s: float | None = served.wait_until(lambda w: w.final_at >= newest, timeout=limit_s) - ready
        except TimeoutError:
            settle_s = None
        rebuilt = int(_rebuilds() - rebuilds)
        stop.set()
        load = Load(images.get(timeout=120)[0], health.get(timeout=120)[1])
        for process in processes:
            process.join(timeout=30)
        return Outcome(settle_s, rebuilt, load, sorted(served.view.codes))
    finally:
        stop.set()
        for process in processes:
            if process.is_alive():
                process.kill()
        served.stop()


def _publish_city(bootstrap: str, residents: int, directory: Path) -> tuple[Any, int, int]:
    topics = bench_topics("web")
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    sink = KafkaSink(bootstrap)
    pacer = NewestOnly(None)
    publisher = Publisher(sink.send, topics, pacer)
    try:
        write_run(Simulation(outbreak(residents)), directory, also=publisher.publish_chunk)
    finally:
        sink.close()
    return topics, sum(publisher.sent.values()), pacer.newest


def _health(load: Load) -> str:
    health = np.array(load.health_ms)
    if not health.size:
        return "never answered"
    return f"p50 {np.percentile(health, 50):,.0f} ms, max {health.max():,.0f} ms"


def run(bootstrap: str, residents: int, key: SigningKey, directory: Path) -> list[str]:
    topics, events, newest = _publish_city(bootstrap, residents, directory)
    config = replace(worker_config(bootstrap, topics, key), partitions=PARTITIONS, resident_secrets=[SECRET],
                     token_rate=UNLIMITED, client_rate=UNLIMITED)
    primed = measure(config, newest, BASELINE, [], limit_s=600)
    if primed.settle_s is None:
        raise RuntimeError("the first worker did not settle the city within 600 s")
    persons = primed.coded
    lines = [
        f"city: {residents:,} residents x 1 day, {events:,} events, {len(persons):,} residents with a code; "
        f"first settle {primed.settle_s:.2f} s (not compared: it also publishes the codes)",
        f"{CLIENTS} concurrent clients asking for PNG codes; settle time from ready to settled through the newest "
        "event (each loaded run right after its own baseline with no image requests: other work on this machine "
        "comes and goes)",
    ]
    print("\n".join(lines), flush=True)
    for variant in LOADED:
        baseline = measure(config, newest, BASELINE, persons, limit_s=600)
        if baseline.settle_s is None:
            raise RuntimeError("a worker with no image requests did not settle the city within 600 s")
        # Stopped at LIMIT times the baseline: rendering on the loop can starve the group
        # heartbeat, and a worker dropped from its group starts over.
        outcome = measure(config, newest, variant, persons, limit_s=LIMIT * baseline.settle_s)
        line = f"  {variant.label:<56}"
        line += (f" settle {outcome.settle_s:6.2f} s against {baseline.settle_s:6.2f} s: "
                 f"ratio {outcome.settle_s / baseline.settle_s:5.2f}" if outcome.settle_s is not None
                 else f" NOT settled in {LIMIT * baseline.settle_s:.0f} s ({LIMIT} x {baseline.settle_s:.2f} s)")
        statuses = outcome.load.statuses
        served = statuses.get(200, 0) / (outcome.settle_s or LIMIT * baseline.settle_s)
        line += f", rebuilds {outcome.rebuilds} | PNG 200 {statuses.get(200, 0):>5,} ({served:,.1f}/s)"
        line += f", 429 {statuses.get(429, 0):>5,}"
        line += f" | /healthz {_health(outcome.load)} against {_health(baseline.load)}"
        print(line, flush=True)
        lines.append(line)
    return lines


SLICE_S = 0.001
SHARE_S = 4.0
RENDERERS = 8


def _slice() -> None:
    """About a millisecond of pure-Python work: a stand-in for a slice of scoring."""
    end = time.perf_counter() + SLICE_S
    while time.perf_counter() < end:
        pass


async def _loop_share(render: Callable[[str], Any] | None, codes: list[str]) -> int:
    """Slices the loop completes in SHARE_S while `RENDERERS` clients keep `render` busy."""
    done = 0
    stop = asyncio.Event()

    async def client(offset: int) -> None:
        index = offset
        while not stop.is_set():
            await render(codes[index % len(codes)])  # type: ignore[misc]
            index += RENDERERS

    clients = [asyncio.ensure_future(client(n)) for n in range(RENDERERS)] if render else []
    end = time.perf_counter() + SHARE_S
    while time.perf_counter() < end:
        _slice()
        done += 1
        await asyncio.sleep(0)
    stop.set()
    await asyncio.gather(*clients)
    return done


def loop_share(codes: list[str]) -> list[str]:
    """The event loop's share of CPU while images render: on the loop, in threads, in a process."""

    async def on_loop(code: str) -> bytes:
        image = render_qr(code, "png")
        await asyncio.sleep(0)  # a request handler ends here; the loop turns before the next request
        return image

    def uncached(executor: Callable[[], Executor]) -> Callable[[], CodeImages]:
        return lambda: CodeImages(limit=RENDERERS, cache_size=0, executor=executor)

    async def measure_one(images: Callable[[], CodeImages] | None, inline: bool) -> int:
        if inline:
            return await _loop_share(on_loop, codes)
        if images is None:
            return await _loop_share(None, codes)
        renderer = images()
        renderer.start()
        await renderer.image(codes[0], "png")  # started and warm
        try:
            return await _loop_share(lambda code: renderer.image(code, "png"), codes)
        finally:
            renderer.close()

    lines = [f"loop share: {SLICE_S * 1000:.0f} ms slices of pure-Python work on the loop for {SHARE_S:.0f} s "
             f"while {RENDERERS} clients keep PNG renders going (no cache), against no renders just before"]
    print(lines[0], flush=True)
    for label, images, inline in (
        ("rendered on the loop (before)", None, True),
        ("thread pool (2 threads)", uncached(_threads), False),
        ("rendering process", uncached(render_process), False),
    ):
        alone = asyncio.run(measure_one(None, False))
        shared = asyncio.run(measure_one(images, inline))
        line = f"  {label:<32} slices {shared:>6,} against {alone:>6,} alone: loop share {shared / alone:5.2f}"
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
    codes = [f"HCQ1:{n:06d}" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 5 for n in range(64)]
    lines += loop_share(codes)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
