"""QR images of codes for a web view, rendered off the event loop that scores.

A QR image takes tens of milliseconds of pure-Python CPU (segno); rendered on the
worker's event loop, a burst of image requests stalls scoring, heartbeats and
/healthz. Here images are rendered in a separate process: the render holds the GIL, so
with a thread pool the loop still waits for it (`python -m bench.web`: while renders
ran, the loop kept 1% of its pure-Python work with rendering on the loop, 17% with two
threads, 55% with the process, on a 2-core machine shared with other work). Each image
is cached per code text and format (a bounded LRU: a code's image never changes),
concurrent requests for the same image share one render, and at most `limit` distinct
renders are running or queued at once: beyond that the caller gets `Busy`, which a web
view answers with 429 and Retry-After instead of queueing work without bound.

Any aiohttp or Faust web view can use one `CodeImages`: `start()` it with the app (the
rendering process takes seconds to start), `await images.image(code, fmt)`, `close()` it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from codes.qr import QrFormat, render_qr
from streams.parentdeath import die_with

DEFAULT_LIMIT = 16
DEFAULT_CACHE_SIZE = 1024
"""Images kept (a PNG of a code is about 1 kB, an SVG about 7 kB)."""
RETRY_AFTER_S = 1
_WARM_UP = "HCQ1:"


class Busy(Exception):
    """No image now (too many renders under way): come back after `retry_after_s` seconds."""

    status = 429

    def __init__(self, reason: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class RendererRestarted(Busy):
    """The rendering process died under this request; a new one serves the next."""

    status = 503


def render_process() -> Executor:
    """One rendering process, started fresh (spawn: the worker's threads and sockets are not
    forked), that dies with the worker."""
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=die_with, initargs=(os.getpid(),)
    )
    # Starting the process and importing the renderer take seconds on a busy machine: now, not on the first request.
    pool.submit(render_qr, _WARM_UP, "png")
    return pool


class CodeImages:
    """Rendered QR images of codes: cached, rendered off the loop, at most `limit` renders at once."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        executor: Callable[[], Executor] = render_process,
        render: Callable[[str, QrFormat], bytes] = render_qr,
    ) -> None:
        if limit < 1 or cache_size < 0:
            raise ValueError("limit must be at least 1 and cache_size at least 0")
        self.limit = limit
        self.cache_size = cache_size
        self._new_executor = executor
        self._executor: Executor | None = None
        self._render = render
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._rendering: dict[tuple[str, str], asyncio.Task[bytes]] = {}

    @property
    def in_flight(self) -> int:
        """Distinct renders running or queued now."""
        return len(self._rendering)

    def start(self) -> None:
        """Start the renderer now rather than on the first request (a web app's startup)."""
        self._running()

    def _running(self) -> Executor:
        if self._executor is None:
            self._executor = self._new_executor()
        return self._executor

    async def image(self, code: str, fmt: QrFormat) -> bytes:
        """The image of `code`; raises `Busy` when `limit` renders are already under way,
        and `codes.QrError` for text that is not a code of ours."""
        key = (code, fmt)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        task = self._rendering.get(key)
        if task is None:
            if len(self._rendering) >= self.limit:
                raise Busy(f"{self.limit} images are being rendered; try again shortly")
            task = asyncio.ensure_future(self._render_once(key))
            self._rendering[key] = task
        # Shielded: a caller that goes away does not cancel the render others wait for.
        return await asyncio.shield(task)

    async def _render_once(self, key: tuple[str, str]) -> bytes:
        try:
            executor = self._running()
            try:
                image = await asyncio.get_running_loop().run_in_executor(executor, self._render, *key)
            except BrokenProcessPool:
                # The rendering process died (killed, out of memory): start a new one for the next request.
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
                raise RendererRestarted("the image renderer restarted; try again") from None
            if self.cache_size:
                self._cache[key] = image
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return image
        finally:
            del self._rendering[key]

    def close(self) -> None:
        """Stop the renderer now; renders still queued are cancelled."""
        if self._executor is not None:
            # At exit Python joins the pool's process, which may still be busy for seconds on a
            # loaded machine: that ate most of a worker's 10 s stop budget. Nothing it holds needs
            # saving, so it is killed rather than waited for (SIGKILL: a handler inherited or set
            # in the child cannot delay it).
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.kill()
            self._executor = None
