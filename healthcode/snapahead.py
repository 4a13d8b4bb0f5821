"""Pings snapped to H3 cells in a helper process, a batch ahead of the replay scoring them.

Snapping a position is about a microsecond (h3ronpy, which holds the GIL), a tenth of a
replay's time on an outbreak city, and it needs nothing but the positions: so while
replay scores one batch of pings, the helper snaps the next. The cells are the ones
scoring would have snapped itself (`scoring.cells.snap`), so the timeline is the same
byte for byte; only the wall time changes, and the helper's CPU is added to the
process's: it pays only where a second physical core is free (`healthcode replay
--snap-ahead`; on a 2-vCPU machine it ranged from a gain to a loss). The helper dies with the process that started it; if it cannot start or dies
itself, the batches are snapped here instead (the same cells, only slower).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

import numpy as np

from scoring.cells import Snapped, snap
from scoring.eventfile import PingBatch
from streams.parentdeath import die_with


class SnapAhead:
    """A `scoring.replay.SnapAhead`: use as a context manager, which stops the helper.

    The helper starts with the first batch, which is snapped here while it starts: an input
    that cannot be read never waits for a process to start and stop.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._entered = False

    def __enter__(self) -> SnapAhead:
        self._entered = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._entered = False
        if self._pool is not None:
            self._pool.shutdown(wait=error is None, cancel_futures=True)
            self._pool = None

    def __call__(self, batches: Iterable[PingBatch], resolutions: Sequence[int]) -> Iterator[tuple[PingBatch, Snapped]]:
        """Each batch with its cells at `resolutions`; the next batch is being snapped while one is given."""
        wanted = tuple(resolutions)
        pending: deque[tuple[PingBatch, Future[dict[int, np.ndarray]] | None]] = deque()
        for batch in batches:
            if not pending:
                pending.append((batch, None))  # the first: snapped here while the helper starts
                self._start()
                continue
            pending.append((batch, self._submit(batch.lat, batch.lon, wanted)))
            yield self._done(*pending.popleft(), wanted)
        while pending:
            yield self._done(*pending.popleft(), wanted)

    def _start(self) -> None:
        if self._pool is not None or not self._entered:
            return
        try:
            # Spawned, not forked: the progress bar's thread and the parent's memory stay out of it.
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with, initargs=(os.getpid(),),
            )
        except Exception:  # no semaphores, a daemonic parent...: snapped here
            self._pool = None

    def _submit(self, lat: np.ndarray, lon: np.ndarray, resolutions: tuple[int, ...]) -> Future[dict[int, np.ndarray]] | None:
        if self._pool is None:
            return None
        try:
            return self._pool.submit(snap_each, lat, lon, resolutions)
        except Exception:  # could not start, or died: snapped here from now on
            self._stop()
            return None

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _done(
        self, batch: PingBatch, cells: Future[dict[int, np.ndarray]] | None, resolutions: tuple[int, ...]
    ) -> tuple[PingBatch, Snapped]:
        if cells is not None:
            try:
                return batch, cells.result()
            except Exception:  # the helper died or failed (a real error would recur below, here)
                self._stop()
        return batch, snap_each(batch.lat, batch.lon, resolutions)


def snap_each(lat: np.ndarray, lon: np.ndarray, resolutions: Sequence[int]) -> dict[int, np.ndarray]:
    """The positions' cells at each resolution (run in the helper)."""
    return {resolution: snap(lat, lon, resolution) for resolution in resolutions}
