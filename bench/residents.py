"""Residents' codes on demand: how many a worker serves per second, and how much serving slows scoring.

One process stands for one worker: its event loop serves `/residents/{pseudonym}/code`
(`streams.web.make_app`: token check, the resident's standing, an Ed25519 signature, JSON)
and, in the scoring runs, also scores a simulated outbreak day through a `Step` on an
in-memory log in batches, yielding to the loop between batches as the Faust worker does.
The code route serves a view settled on the same city beforehand (every resident known,
the changed ones with their records), so every request is a full answer. Clients run in
a process of their own (aiohttp, each resident with their own token, rate limits off).

1. Codes per second with nothing else on the loop: 32 clients asking as fast as answers
   come, JSON (as a checkpoint's phone app would) and JSON with the QR as SVG (the
   resident page's request, whose image is rendered once per code in the rendering process).
2. Scoring with and without requests: the time to score the day with no requests (the
   baseline, measured right before each loaded run: other work on a shared machine comes
   and goes), then with requests paced at a fixed rate, then with clients asking as fast
   as they can; the ratio of each to its baseline (goal: under 1.10 at the paced rates).
   A control pair (the client process connected but idle) shows the noise of the pairing
   itself: on a busy shared machine it can exceed the effect of the requests, so the bench
   also gives the loop's share from the CPU each answer took in step 1.
3. From a level change to refusal at a checkpoint: a resident fetches a code, their level
   changes in the worker's view, the next request is answered with the new level, and the
   checkpoint verifier refuses the old code from its expiry on.

    .venv/bin/python -m bench.residents            # 1,000 residents x 1 day
    .venv/bin/python -m bench.residents --quick    # 300 residents x 1 day
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, TCPConnector, web

from bench._pipeline import RULES, bench_topics, outbreak
from codes import Algorithm, Reason, SigningKey, TrustList, generate_signing_key, verify
from codes.access import RatePolicy, resident_token
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339, parse_rfc3339
from simulators.output import write_run
from simulators.publish import route
from simulators.run import Simulation
from streams.step import WorkerConfig, WorkerView
from streams.testing import MemoryLog, StepDriver, settle
from streams.web import make_app

PARTITIONS = 4
SECRET = bytes(range(32))
UNLIMITED = RatePolicy(per_minute=10**9, burst=10**6)
CLIENTS = 32
SERVE_S = 4.0
PACED = (10, 100)
"""Requests per second in the paced runs: a city of 1,000 residents each refreshing a 5-minute code
half way through its life asks about 7 a second per worker."""
IDLE_RATE = 0.001
"""The control: the client process runs and holds its connections but asks (almost) nothing."""
REPEATS = 3
BATCH = 500
"""Records per partition a scoring turn takes before it yields to the loop."""


def _city(residents: int, directory: Path) -> list[bytes]:
    events = write_run(Simulation(outbreak(residents)), directory)
    return events.read_bytes().splitlines()


def _config(key: SigningKey) -> WorkerConfig:
    return WorkerConfig(bootstrap="memory", topics=bench_topics("memory"), group="memory",
                        rules=load_rule_set(RULES / "default.yaml"), keys=[key], partitions=PARTITIONS,
                        resident_secrets=[SECRET], token_rate=UNLIMITED, client_rate=UNLIMITED,
                        stages=False)  # one unsplit step is the whole worker: it reads every ping itself


def _newest(lines: list[bytes], config: WorkerConfig) -> int:
    return max(t for t in (route(line, config.topics).ts for line in lines) if t is not None)


def settled_view(lines: list[bytes], config: WorkerConfig) -> WorkerView:
    """The view of a worker that owns every partition and has settled the whole city."""
    log = MemoryLog(config.topics, PARTITIONS)
    log.publish(lines)
    driver = StepDriver(log, config, frozenset(range(PARTITIONS)))
    settle([driver], _newest(lines, config), time.time(), step_s=config.idle_s)
    return driver.view


async def thread_cpu() -> float:
    """CPU seconds the loop's thread has used (what it spends serving and scoring, whatever else runs)."""
    return time.thread_time()


async def score(lines: list[bytes], config: WorkerConfig) -> tuple[float, float]:
    """Wall and CPU seconds of the loop's thread to score the city on this loop, in batches,
    yielding between them."""
    log = MemoryLog(config.topics, PARTITIONS)
    log.publish(lines)
    newest = _newest(lines, config)
    start, cpu = time.perf_counter(), time.thread_time()
    driver = StepDriver(log, config, frozenset(range(PARTITIONS)))
    now = 0.0
    while True:
        output = driver.turn(now, time.time(), limit=BATCH)
        if output.settled_through is not None and output.settled_through >= newest:
            return time.perf_counter() - start, time.thread_time() - cpu
        now += config.idle_s
        await asyncio.sleep(0)


async def _ask(port: int, persons: list[str], query: str, clients: int, rate: float | None, stop: Any,
               ready: Any) -> Counter[int]:
    statuses: Counter[int] = Counter()
    tokens = {person: resident_token(SECRET, person) for person in persons}
    base = f"http://127.0.0.1:{port}"
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        # Connected and answered once before the measurement starts (spawning and importing take seconds).
        await asyncio.gather(*(_warm(session, base, person, tokens[person]) for person in persons[:clients]))
        ready.set()

        async def once(person: str) -> None:
            url = f"{base}/residents/{person}/code{query}"
            async with session.get(url, headers={"Authorization": f"Bearer {tokens[person]}"}) as answer:
                await answer.read()
                statuses[answer.status] += 1

        async def client(seed: int) -> None:
            chosen = random.Random(seed)
            while not stop.is_set():
                await once(chosen.choice(persons))

        async def paced(every_s: float) -> None:
            chosen, pending = random.Random(7), set()
            due = time.perf_counter()
            while not stop.is_set():
                if time.perf_counter() >= due:
                    pending.add(asyncio.ensure_future(once(chosen.choice(persons))))
                    pending = {task for task in pending if not task.done()}
                    due += every_s
                await asyncio.sleep(max(0.0, min(0.05, due - time.perf_counter())))
            await asyncio.gather(*pending)

        if rate is None:
            await asyncio.gather(*(client(n) for n in range(clients)))
        else:
            await paced(1.0 / rate)
    return statuses


async def _warm(session: ClientSession, base: str, person: str, token: str) -> None:
    async with session.get(f"{base}/residents/{person}/code", headers={"Authorization": f"Bearer {token}"}) as answer:
        await answer.read()


def _client_process(port: int, persons: list[str], query: str, clients: int, rate: float | None,
                    stop: Any, ready: Any, results: Any) -> None:
    results.put(dict(asyncio.run(_ask(port, persons, query, clients, rate, stop, ready))))


class Worker:
    """An event loop in a thread serving `view`, on which scoring runs can be started."""

    def __init__(self, view: WorkerView, config: WorkerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def serve() -> None:
            self.runner = web.AppRunner(make_app(view, config))
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            self.port = self.runner.addresses[0][1]
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        if not ready.wait(60):
            raise RuntimeError("the web app did not start within 60 s")

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def _with_clients(worker: Worker, persons: list[str], query: str, clients: int, rate: float | None,
                  during: Any) -> tuple[Any, dict[int, int], float]:
    """Run `during()` while a client process asks; what it returned, the statuses, the seconds the clients ran."""
    context = multiprocessing.get_context("spawn")
    stop, ready, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_client_process,
                              args=(worker.port, persons, query, clients, rate, stop, ready, results), daemon=True)
    process.start()
    if not ready.wait(120):
        process.kill()
        raise RuntimeError("the client process did not get its first answers within 120 s")
    start = time.perf_counter()
    try:
        value = during()
    finally:
        stop.set()
    seconds = time.perf_counter() - start
    statuses = results.get(timeout=60)
    process.join(30)
    return value, statuses, seconds


def served_per_second(worker: Worker, persons: list[str]) -> list[str]:
    lines = [f"codes served by one worker's loop, {CLIENTS} clients (another process) asking as fast as answered, "
             f"{SERVE_S:.0f} s each, nothing else on the loop; per wall second on this shared machine and per "
             "CPU-second of the loop's thread (load-independent):"]
    print(lines[0], flush=True)
    for label, query in (("JSON", ""), ("JSON with the QR as SVG (the page)", "?qr=svg")):
        def window() -> float:
            before = worker.run(thread_cpu())
            time.sleep(SERVE_S)
            return worker.run(thread_cpu()) - before

        cpu, statuses, seconds = _with_clients(worker, persons, query, CLIENTS, None, window)
        ok = statuses.get(200, 0)
        shown = len(lines)
        others = {k: v for k, v in statuses.items() if k != 200} or "none"
        lines.append(f"  {label:<36} {ok / seconds:7,.0f} codes/s, {ok / cpu:7,.0f} per CPU-second "
                     f"({ok:,} answered 200; other statuses {others})")
        if not query:
            # What serving costs the loop at the paced rates, from the CPU each answer took.
            lines.append("    so serving takes of the loop's CPU: " + ", ".join(
                f"{100 * rate * cpu / ok:.1f}% at {rate} requests/s" for rate in PACED))
        print("\n".join(lines[shown:]), flush=True)
    return lines


def slowdown(worker: Worker, persons: list[str], lines_in: list[bytes], config: WorkerConfig) -> list[str]:
    lines = [f"scoring the day on the same loop (batches of {BATCH} records per partition), {REPEATS} pairs per load, "
             "each loaded run right after its own baseline with no requests; median ratios of the loop thread's CPU "
             "seconds (load-independent) and of wall seconds:"]
    print(lines[0], flush=True)
    loads = [("control: clients connected, idle", IDLE_RATE), *((f"{rate} requests/s, paced", rate) for rate in PACED),
             ("as fast as answered", None)]
    for label, rate in loads:
        ratios, walls, served = [], [], []
        for _ in range(REPEATS):
            baseline_s, baseline_cpu = worker.run(score(lines_in, config))
            (loaded_s, loaded_cpu), statuses, seconds = _with_clients(
                worker, persons, "", CLIENTS, rate, lambda: worker.run(score(lines_in, config)))
            ratios.append(loaded_cpu / baseline_cpu)
            walls.append(loaded_s / baseline_s)
            served.append(statuses.get(200, 0) / seconds)
        ratio = statistics.median(ratios)
        goal = "" if rate in (None, IDLE_RATE) else f" (goal < 1.10: {'met' if ratio < 1.10 else 'NOT met'})"
        lines.append(f"  {label:<24} loop CPU ratio {ratio:5.2f} (pairs {', '.join(f'{r:.2f}' for r in ratios)}){goal}; "
                     f"wall ratio {statistics.median(walls):5.2f}; {statistics.median(served):,.0f} codes/s served meanwhile")
        print(lines[-1], flush=True)
    return lines


def worst_case(view: WorkerView, config: WorkerConfig, key: SigningKey) -> list[str]:
    """A green resident fetches a code, turns red, fetches again; when does a checkpoint refuse the first code?"""
    person = min(view.residents - set(view.codes))
    trust = TrustList.of([key.info])

    async def ask() -> dict[str, Any]:
        async with TestClientLike(view, config) as get:
            return await get(person)

    first = asyncio.run(ask())
    changed_at = time.perf_counter()
    at = view.watermark
    view.codes[person] = {
        "type": "code", "person": person, "level": "red", "rule_set": view.rule_set, "assessed_at": format_rfc3339(at),
        "reasons": [{"rule": "confirmed_case", "level": "red", "since": format_rfc3339(at), "until": None,
                     "evidence": []}],
    }
    second = asyncio.run(ask())
    served_new_s = time.perf_counter() - changed_at
    issued, expires = parse_rfc3339(first["issued_at"]), parse_rfc3339(first["expires_at"])
    # The checkpoint's verdict on the old code, second by second from its issue.
    refused = next(t for t in range(issued, expires + 60) if verify(first["code"], trust, at=t).reason is not Reason.OK)
    lines = [
        "from a level change to refusal at a checkpoint:",
        f"  green code issued at +0 s; level changed in the worker's view; next request answered "
        f"{second['level']} after {served_new_s * 1000:,.1f} ms (new code signed at the request)",
        f"  the checkpoint verifier accepts the old green code until +{refused - issued - 1} s and refuses it from "
        f"+{refused - issued} s ({verify(first['code'], trust, at=refused).reason.name}): worst case = the validity, "
        f"{config.code_validity_s} s, after the worker publishes the change",
    ]
    print("\n".join(lines), flush=True)
    del view.codes[person]
    return lines


class TestClientLike:
    """A one-off in-process client of a fresh app on `view` (its own given-codes memory)."""

    def __init__(self, view: WorkerView, config: WorkerConfig) -> None:
        self.view, self.config = view, config

    async def __aenter__(self) -> Any:
        from aiohttp.test_utils import TestClient, TestServer

        self.client = TestClient(TestServer(make_app(self.view, self.config)))
        await self.client.start_server()

        async def get(person: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {resident_token(SECRET, person)}"}
            async with self.client.get(f"/residents/{person}/code", headers=headers) as answer:
                return orjson.loads(await answer.read())

        return get

    async def __aexit__(self, *_: Any) -> None:
        await self.client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 residents x 1 day")
    parser.add_argument("--out", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    residents = 300 if args.quick else 1_000
    now = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, now - 3600, now + 86_400)
    config = _config(key)
    with tempfile.TemporaryDirectory() as scratch:
        lines_in = _city(residents, Path(scratch))
    view = settled_view(lines_in, config)
    persons = sorted(view.residents)
    lines = [f"city: {residents:,} residents x 1 day, {len(lines_in):,} events; {len(persons):,} residents known, "
             f"{len(view.codes):,} with a level change"]
    print(lines[0], flush=True)
    worker = Worker(view, replace(config))
    try:
        lines += served_per_second(worker, persons)
        lines += slowdown(worker, persons, lines_in, config)
    finally:
        worker.close()
    lines += worst_case(view, config, key)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
