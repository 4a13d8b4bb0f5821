"""QR images on the worker's web port never hold up the event loop.

Images are rendered off the loop, at most `limit` at once (more are answered 429 with
Retry-After), and cached per code text: while renders are under way /healthz and the
JSON code answer come back at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from codes import Algorithm, generate_signing_key, render_qr
from codes.access import RatePolicy, resident_token
from streams.images import CodeImages
from streams.step import WorkerConfig, WorkerView
from streams.testing import resident_web
from streams.web import make_app

PARTITIONS = 2
AT = 1_650_000_000
PERSONS = [f"p{n:04d}" for n in range(8)]
SECRET = bytes(range(32))
_PLENTY = RatePolicy(per_minute=6000, burst=1000)


def _view() -> tuple[WorkerView, WorkerConfig]:
    key = generate_signing_key(Algorithm.EDDSA, AT - 3600, AT + 86_400)
    return resident_web([key], SECRET, PARTITIONS, AT, PERSONS, token_rate=_PLENTY, client_rate=_PLENTY)


def _auth(person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {resident_token(SECRET, person)}"}


async def _code(client: TestClient, person: str) -> str:
    """The code the worker gives `person` now (it gives the same one again for a while)."""
    async with client.get(f"/residents/{person}/code", headers=_auth(person)) as answer:
        assert answer.status == 200
        return (await answer.json())["code"]


class GatedRender:
    """The real `render_qr`, held at a gate until the test opens it; counts renders by code."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = Counter[str]()
        self._lock = threading.Lock()

    def __call__(self, code: str, fmt: str) -> bytes:
        with self._lock:
            self.started[code] += 1
        self.gate.wait(timeout=60)
        return render_qr(code, fmt)  # type: ignore[arg-type]


def _threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4)


@pytest.fixture
def gated() -> GatedRender:
    return GatedRender()


async def _client(view: tuple[WorkerView, WorkerConfig], images: CodeImages) -> TestClient:
    client = TestClient(TestServer(make_app(*view, images)))
    await client.start_server()
    return client


@pytest.fixture
async def gated_client(gated: GatedRender) -> AsyncIterator[tuple[TestClient, CodeImages, tuple[WorkerView, WorkerConfig]]]:
    view = _view()
    images = CodeImages(limit=2, executor=_threads, render=gated)
    client = await _client(view, images)
    try:
        yield client, images, view
    finally:
        gated.gate.set()
        await client.close()


async def _until(condition: Callable[[], bool]) -> None:
    # Bounded by the test timeout, not by wall time here.
    while not condition():
        await asyncio.sleep(0.005)


async def _png(client: TestClient, person: str) -> tuple[int, bytes, dict[str, str]]:
    async with client.get(f"/residents/{person}/code", params={"format": "png"}, headers=_auth(person)) as answer:
        return answer.status, await answer.read(), dict(answer.headers)


async def test_a_saturated_image_endpoint_answers_429_with_retry_after(gated_client, gated: GatedRender) -> None:
    client, images, _ = gated_client
    codes = {person: await _code(client, person) for person in PERSONS[:3]}
    first = [asyncio.create_task(_png(client, person)) for person in PERSONS[:2]]
    await _until(lambda: images.in_flight == 2)

    status, body, headers = await _png(client, PERSONS[2])
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert "try again" in orjson.loads(body)["error"]
    assert gated.started[codes[PERSONS[2]]] == 0, "a refused request renders nothing"

    gated.gate.set()
    for task, person in zip(first, PERSONS[:2]):
        status, body, _ = await task
        assert status == 200
        assert body == render_qr(codes[person], "png")
    assert (await _png(client, PERSONS[2]))[0] == 200, "once renders finish, new ones are taken again"


async def test_healthz_and_json_answer_while_image_renders_are_in_flight(gated_client) -> None:
    client, images, _ = gated_client
    pending = [asyncio.create_task(_png(client, person)) for person in PERSONS[:2]]
    await _until(lambda: images.in_flight == 2)

    async with client.get("/healthz") as health:
        assert health.status == 200
    async with client.get(f"/residents/{PERSONS[5]}/code", headers=_auth(PERSONS[5])) as answer:
        assert answer.status == 200
        assert (await answer.json())["person"] == PERSONS[5]
    assert not any(task.done() for task in pending), "both renders were still under way"
    assert images.in_flight == 2


async def test_the_cache_gives_identical_bytes_without_rendering_again(gated_client, gated: GatedRender) -> None:
    client, _, _ = gated_client
    gated.gate.set()
    code = await _code(client, PERSONS[0])
    once = await _png(client, PERSONS[0])
    again = await _png(client, PERSONS[0])
    assert once[0] == again[0] == 200
    assert once[1] == again[1] == render_qr(code, "png")
    assert gated.started[code] == 1
    async with client.get(f"/residents/{PERSONS[0]}/code", params={"format": "svg"}, headers=_auth(PERSONS[0])) as svg:
        assert await svg.read() == render_qr(code, "svg"), "each format is its own image"
    assert gated.started[code] == 2


async def test_requests_for_one_image_share_one_render_and_one_slot(gated_client, gated: GatedRender) -> None:
    client, images, _ = gated_client
    code = await _code(client, PERSONS[0])
    same = [asyncio.create_task(_png(client, PERSONS[0])) for _ in range(5)]
    other = asyncio.create_task(_png(client, PERSONS[1]))
    await _until(lambda: images.in_flight == 2)
    gated.gate.set()
    answers = await asyncio.gather(*same, other)
    assert [status for status, _, _ in answers] == [200] * 6
    assert gated.started[code] == 1


async def test_the_cache_is_bounded_least_recently_used_first(gated: GatedRender) -> None:
    gated.gate.set()
    images = CodeImages(limit=2, cache_size=2, executor=_threads, render=gated)
    try:
        for code in ("HCQ1:A", "HCQ1:B", "HCQ1:A", "HCQ1:C", "HCQ1:A", "HCQ1:B"):
            await images.image(code, "png")
    finally:
        images.close()
    # A stayed in use and was kept; B was the least recently used when C came, so it was drawn again.
    assert gated.started == Counter({"HCQ1:A": 1, "HCQ1:B": 2, "HCQ1:C": 1})


async def test_the_default_renderer_leaves_the_loop_free_for_healthz() -> None:
    """Real renders in the default rendering process: /healthz is answered while they run.

    Before, render_qr ran in the request handler on the loop, so /healthz waited behind
    every image request ahead of it.
    """
    view = _view()
    images = CodeImages(limit=len(PERSONS))
    client = await _client(view, images)
    try:
        pending = [asyncio.create_task(_png(client, person)) for person in PERSONS]
        await _until(lambda: images.in_flight == len(PERSONS))
        async with client.get("/healthz") as health:
            assert health.status == 200
        assert images.in_flight > 0, "/healthz came back while renders were still queued"
        answers = await asyncio.gather(*pending)
        codes = [await _code(client, person) for person in PERSONS]
        assert [body for _, body, _ in answers] == [render_qr(code, "png") for code in codes]
    finally:
        await client.close()


_ORPHAN = """
import asyncio, os, sys, time
from streams.images import CodeImages

async def main():
    images = CodeImages()
    await images.image("HCQ1:ABC", "png")
    print(os.getpid(), flush=True)
    time.sleep(300)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_rendering_process_dies_with_a_worker_killed_by_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_ORPHAN)
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert worker.stdout is not None
    pid = int(worker.stdout.readline())
    children = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True).stdout.split()
    assert children, "the worker has its rendering process"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    # Bounded by the test timeout: the kernel kills the children right away.
    while any(_alive(child) for child in children):
        time.sleep(0.05)


def _alive(pid: str) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_closing_stops_a_busy_rendering_process_instead_of_waiting_for_it() -> None:
    # A render that would take a minute, in a process that ignores SIGTERM (as one that inherited a
    # handler can): close must not leave it for the interpreter's exit to join.
    images = CodeImages(executor=_one_process_pool, render=_slow_render)
    images.start()
    executor = images._running()
    executor.submit(_slow_render, "HCQ1:", "png")
    processes = list(executor._processes.values())  # type: ignore[attr-defined]
    assert processes and all(process.is_alive() for process in processes)
    images.close()
    for process in processes:
        process.join(timeout=30)  # bounded; killing makes it immediate
        # Asked of the kernel, not of `is_alive`: the pool's own thread reaps the process too, and
        # `is_alive` answers "alive" when that thread's waitpid won the race (ECHILD for ours).
        assert not _alive(str(process.pid))


def _one_process_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_IGN))


def _slow_render(code: str, fmt: str) -> bytes:
    time.sleep(60)
    return b""
