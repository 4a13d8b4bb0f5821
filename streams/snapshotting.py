"""When a worker snapshots its steps, what each snapshot notes, and which one an assignment resumes from.

The Faust shell (`streams.app`) asks between turns (`take`, then `keep`), and at an
assignment (`latest` per stage, then `resumed`). The format and the store are
`streams.snapshots`; a step's state as bytes, and back, is `streams.resume`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import faust
from aiokafka.errors import KafkaError

from streams import metrics
from streams.fence import fence_key, new_fence
from streams.resume import AnyStep, image, log_facts, restored, restored_stage, settings_of, software, stage_of, store_directory
from streams.snapshots import Snapshot, SnapshotStore, Unusable, digest, made_by, unusable
from streams.step import Record, Source, Step, WorkerConfig, WorkerView

log = logging.getLogger(__name__)


class RebuildDeferred(Exception):
    """A rebuild cannot be done now (topics gone, broker silent, a fence lost): it is tried again."""


@dataclass(frozen=True)
class Pending:
    """A snapshot of one stage taken, waiting for the broker to say where its fences on `codes`
    went (the scoring step's: the stages of presence publish no codes, and fence nothing)."""

    stage: str
    """What it is a snapshot of (`streams.resume.stage_of`)."""
    snapshot: Snapshot
    owned: frozenset[int]
    """The partitions whose state it is (the step's may be revoked while its fences are sent)."""
    fences: dict[int, Awaitable[Any]]
    """Per owned partition, the fence's send (its record metadata)."""
    fence: str
    """The fences' digest (`streams.snapshots.digest`)."""


class Snapshotter:
    """One worker's snapshots: every `config.snapshot_every_s` between turns, of each step whose
    inputs moved since its last one, filed per stage and partition set under `config.data_dir`."""

    def __init__(self, config: WorkerConfig, name: str, view: WorkerView, app: faust.App) -> None:
        self.config, self.name, self.view, self.app = config, name, view, app
        self.enabled = config.data_dir is not None and config.snapshot_every_s > 0
        self.due_at = time.monotonic() + config.snapshot_every_s
        self.tails: dict[Source, tuple[int, str]] = {}
        """Per input partition, the offset and digest of the last record read (what a snapshot notes)."""
        self.covers: dict[str, dict[Source, int]] = {}
        """Per stage, the input offsets of the last snapshot taken (or resumed from)."""
        self._made: dict[tuple[str, frozenset[int]], str] = {}
        self._keeping: asyncio.Task[None] | None = None
        """The latest snapshot's writing."""

    def saw(self, last: Iterable[Record]) -> None:
        """The last record read of some partitions: one digest per partition and batch, what a
        snapshot notes of the record before its offset."""
        if not self.enabled:
            return
        for record in last:
            source = (record.topic, record.partition)
            if record.offset >= self.tails.get(source, (-1, ""))[0]:
                self.tails[source] = (record.offset, digest(record.key, record.value))

    def started(self) -> None:
        """New steps were built or resumed: the next snapshot is due a period from now."""
        self.due_at = time.monotonic() + self.config.snapshot_every_s

    def stopped(self) -> None:
        """The steps were disowned (a revocation): a disowned step owns nothing, and its snapshot would be
        filed, and resumed, as a worker's owning nothing. The next assignment's build sets the next one due."""
        self.due_at = math.inf

    def rebuilding(self) -> None:
        """A rebuild reads every input again: no record read before it is a snapshot's tail."""
        self.tails.clear()

    def store(self, stage: str, owned: frozenset[int]) -> SnapshotStore:
        assert self.config.data_dir is not None
        return SnapshotStore(store_directory(self.config.data_dir, self.config.group, owned, stage))

    def made_by(self, stage: str, owned: frozenset[int]) -> str:
        """What makes a state of `stage` for `owned` (the software read once per partition set)."""
        if (stage, owned) not in self._made:
            self._made[(stage, owned)] = made_by(settings_of(self.config, owned, stage), software())
        return self._made[(stage, owned)]

    async def latest(self, stage: str, owned: frozenset[int], kind: type[AnyStep]) -> tuple[AnyStep, Snapshot] | None:
        """The step of `stage` from its latest usable snapshot, with that snapshot (None: none usable)."""
        config = self.config
        store, made = self.store(stage, owned), await asyncio.to_thread(self.made_by, stage, owned)
        reasons = []
        try:
            paths = store.newest_first()
        except OSError as error:  # a directory the worker may not list: rebuilding is always right
            log.warning("cannot list the snapshots in %s, rebuilding from the start: %s", store.directory,
                        error.strerror or error)
            return None
        for path in paths:
            try:
                snapshot = await asyncio.to_thread(store.load, path)
                try:
                    holding = await log_facts(config.bootstrap, snapshot.offsets)
                except (KafkaError, OSError, asyncio.TimeoutError) as error:
                    raise RebuildDeferred(f"the broker does not answer: {error}") from None
                reason = unusable(snapshot, made, holding)
                if reason is not None:
                    raise Unusable(reason)
                step: AnyStep = restored(snapshot.state, config, self.view, self.name, time.monotonic()) \
                    if kind is Step else restored_stage(snapshot.state, kind, config, time.monotonic())
            except Unusable as why:
                reasons.append(f"{path.name}: {why}")
                continue
            return step, snapshot
        log.warning("no usable snapshot in %s, rebuilding from the start: %s", store.directory,
                    "; ".join(reasons) or "none taken yet")
        return None

    def resumed(self, found: list[tuple[str, AnyStep, Snapshot]]) -> None:
        """The steps were restored from these snapshots: each stage's next one is of what follows."""
        for stage, step, snapshot in found:
            self.covers[stage] = step.positions.covered()
            # What the snapshot read before each offset: the next snapshot notes it again for the
            # partitions not read since (rules, areas, a quiet partition), else it would be unusable.
            self.tails.update({source: (snapshot.offsets[source] - 1, tail) for source, tail in snapshot.tails.items()
                               if source in snapshot.offsets})
        self.started()
        metrics.RESUMES.inc()
        metrics.snapshot_taken(min(snapshot.taken_at for _, _, snapshot in found))

    async def take(self, steps: list[AnyStep]) -> list[Pending]:
        """Snapshots of the steps between turns, their fences on their way (none: not due, or
        nothing read since the last ones)."""
        config, codes = self.config, self.config.topics.codes
        now = time.monotonic()
        if not self.enabled or now < self.due_at:
            return []
        if self._keeping is not None and not self._keeping.done():
            return []  # the previous ones are still being written
        self.due_at = now + config.snapshot_every_s
        began = time.perf_counter()
        # Every state is imaged before anything is awaited: a revocation meanwhile disowns the steps.
        taken_at, images = config.clock(), []
        for step in steps:
            stage, positions = stage_of(step), step.positions.covered()
            if positions == self.covers.get(stage):
                continue  # nothing read since the last one written: it would hold the same
            tails = {source: tail for source, (offset, tail) in self.tails.items() if positions.get(source) == offset + 1}
            images.append((stage, step, step.owned, positions, tails, image(step)))
        pending = []
        for stage, step, owned, positions, tails, state in images:
            # The software's digest reads the source files (once per partition set): off the event loop.
            made = await asyncio.to_thread(self.made_by, stage, owned)
            # A fence after everything the step sent to its codes partitions (one producer keeps a
            # partition's order): what the step's ledger knows ends there, a resume reads on from it.
            # Not awaited here: the turn goes on while the broker acknowledges it.
            fence = new_fence()
            fences = {p: await self.app.producer.send(codes, fence_key(self.name), fence, p, None, None)
                      for p in sorted(owned)} if isinstance(step, Step) else {}
            pending.append(Pending(stage, Snapshot(positions, tails, made, taken_at, state), owned, fences,
                                   digest(fence_key(self.name), fence)))
        if pending:
            metrics.SNAPSHOT_PAUSE.observe(time.perf_counter() - began)
        return pending

    def keep(self, pending: list[Pending]) -> None:
        """Write the snapshots taken while the worker goes on: the fences' acknowledgements, then the disk."""
        if pending:
            self._keeping = asyncio.create_task(self._keep(pending))

    def cancel(self) -> None:
        """The worker stops: a snapshot not yet on disk is dropped, the previous one stays the latest."""
        if self._keeping is not None:
            self._keeping.cancel()

    async def _keep(self, pending: list[Pending]) -> None:
        """Once their fences are written, write the snapshots to disk off the event loop; a disk or
        broker problem is logged, never fatal (the previous snapshot stays the latest)."""
        codes = self.config.topics.codes
        try:
            # Everything the steps sent before the snapshot must be on the broker: a resume does
            # not send again what the snapshot's state says was sent (case notices, letters, codes).
            await self.app.producer.flush()
            written = [{p: (await sent).offset + 1 for p, sent in each.fences.items()} for each in pending]
        except KafkaError as error:
            log.warning("a snapshot is dropped: its fence on %s was not written: %s", codes, error)
            return
        size = 0
        for each, fenced in zip(pending, written):
            snapshot = replace(each.snapshot,
                               offsets={**each.snapshot.offsets, **{(codes, p): o for p, o in fenced.items()}},
                               tails={**each.snapshot.tails, **{(codes, p): each.fence for p in fenced}})
            store = self.store(each.stage, each.owned)
            try:
                await asyncio.to_thread(store.write, snapshot)
            except OSError as error:
                log.warning("cannot write a snapshot in %s: %s", store.directory, error.strerror)
                continue
            # Only now: a snapshot dropped on the way is taken again at the next due time, new input or not.
            self.covers[each.stage] = dict(each.snapshot.offsets)
            size += len(snapshot.state)
            metrics.snapshot_taken(snapshot.taken_at)
        metrics.SNAPSHOT_BYTES.set(size)
