"""A worker's step in a snapshot and back, and what the broker holds to judge a snapshot by.

The state is the step itself, pickled: the scoring `Step` with the view's codes and
residents, or a stage of presence split by region (`streams.stages`: `StaysStep`,
`RegionStep`), each for the partition set it owns. Pickle
runs code on loading, so it is used only for files this worker wrote into its own
directory (`streams.snapshots.SnapshotStore`: 0700, files 0600, a checksum) and made by
the same software (`Snapshot.made_by`). The worker's configuration (signing keys,
secrets, clock) and its view are not in it: the worker resuming supplies its own.

Resuming from a snapshot equals going on without one (tested through
`streams.testing.StepDriver`), given three things the snapshot cannot know (of them,
the stays stage needs the last two, the presence stage the last: neither publishes codes):
- codes published after it, read back up to a fence from the snapshot's offsets on
  `codes`, join what the step shows (as on a rebuild, they are checked against the
  settled timeline once it reaches them), so nothing is published twice;
- letters sent after it are on the dead-letter topic, read whole as on a rebuild;
- clock readings of the process that died mean nothing now: the silence of each input
  counts from the resume, and end-of-partition reports start afresh (`Reports`).
What a resumed stage sends again (everything from its snapshot on, as a rebuild sends
everything from the start) its receivers take once (`streams.wire.Upstream`).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from scoring.timeline import fold
from streams.eventtime import Reports
from streams.snapshots import LogFacts, Source, Unusable, digest
from streams.stages import RegionStep, StaysStep
from streams.step import STATUS_EVERY_S, Step, WorkerConfig, WorkerView, code_lines

PROBE_WITHIN_S = 10.0
"""How long the broker may take to show the records before a snapshot's offsets."""
NAMED_WITHIN = 120
"""The longest partition list a snapshot directory's name spells out."""
STAGE, STAYS, PRESENCE = "worker", "stays", "presence"
"""The stage names snapshots are filed under: the scoring step's (whole-city presence too,
unless `WorkerConfig.stages`), the stays stage's and the presence stage's."""

AnyStep = Step | StaysStep | RegionStep
Staged = TypeVar("Staged", StaysStep, RegionStep)


def image(step: AnyStep) -> bytes:
    """The step's state as bytes, without the worker's configuration or view."""
    config, view = step.config, getattr(step, "view", None)
    # Detached while pickling: a persistent_id hook would cost a Python call per object.
    step.config = None  # type: ignore[assignment]
    if isinstance(step, Step):
        step.view = None  # type: ignore[assignment]
    try:
        return pickle.dumps((step, view.codes, view.residents) if view is not None else (step, {}, set()),
                            protocol=5)
    finally:
        step.config = config
        if isinstance(step, Step):
            step.view = view  # type: ignore[assignment]


def _loaded(state: bytes, kind: type, config: WorkerConfig, now: float) -> tuple[Any, dict[str, Any], set[str]]:
    """The step of `kind` a snapshot's state holds (with the view's codes and residents), on this
    worker's configuration, its clock readings this worker's (`now`: its monotonic clock)."""
    try:
        step, codes, residents = pickle.loads(state)
    except Exception as error:  # whatever the bytes, a reason to rebuild, never a crash
        raise Unusable(f"state unreadable: {type(error).__name__}: {error}") from None
    if type(step) is not kind:
        raise Unusable(f"state holds a {type(step).__name__}, not a {'step' if kind is Step else kind.__name__}")
    step.config = config
    step.reports = Reports()
    marks = [step.marks, step.visit_marks] if kind is Step else \
        list(step.marks.values()) if kind is StaysStep else [step.marks]
    for watermarks in marks:
        for clock in watermarks.clocks.values():
            clock.last_arrival = now
    return step, codes, residents


def stage_of(step: AnyStep) -> str:
    """The stage a step's snapshots are filed under (`store_directory`)."""
    return STAYS if isinstance(step, StaysStep) else PRESENCE if isinstance(step, RegionStep) else STAGE


def restored(state: bytes, config: WorkerConfig, view: WorkerView, name: str, now: float) -> Step:
    """The scoring step a snapshot's state holds, now this worker's (`now`: its monotonic clock)."""
    step, codes, residents = _loaded(state, Step, config, now)
    step.view, step.name = view, name
    step.announced_at = now - STATUS_EVERY_S
    step.show(codes, residents)
    return step


def restored_stage(state: bytes, kind: type[Staged], config: WorkerConfig, now: float) -> Staged:
    """The stage of `kind` a snapshot's state holds, now this worker's (`now`: its monotonic clock)."""
    step, _, _ = _loaded(state, kind, config, now)
    return step  # type: ignore[no-any-return]


def caught_up(step: AnyStep, codes: Iterable[bytes], letters: Iterable[bytes]) -> None:
    """What was sent after the snapshot: `codes`, the owned partitions' messages on `codes`
    from the snapshot's offsets (the scoring step's), and `letters`, everything on the
    dead-letter topic (the scoring and stays steps')."""
    if isinstance(step, RegionStep):
        return
    if isinstance(step, Step):
        ledger, view = step.ledger, step.view
        for data, line in code_lines(codes):
            person = data["person"]
            fold(ledger.shown.setdefault(person, []), line)
            # Checked once the settled timeline reaches it: a dead worker's early escalation may not hold.
            ledger.open_from[person] = min(ledger.open_from.get(person, line.at), line.at)
            view.codes[person] = data
    step.dead_lettered.found_in(letters)


def store_directory(data_dir: Path, group: str, owned: frozenset[int], stage: str = STAGE) -> Path:
    """Where the snapshots of `stage` (`STAGE`, or "stays" or "presence" for those stages) for this
    partition set live."""
    partitions = ".".join(str(p) for p in sorted(owned)) or "none"
    if len(partitions) > NAMED_WITHIN:
        # A file name has at most 255 bytes (the rebuild of a worker owning 100 partitions raised on its
        # directory's name): a larger set is named by its size and a digest of the list.
        partitions = f"{len(owned)}-{digest(None, partitions.encode())}"
    return data_dir / "snapshots" / group / f"{stage}-p{partitions}"


def settings_of(config: WorkerConfig, owned: frozenset[int], stage: str = STAGE) -> dict[str, Any]:
    """What in the configuration shapes the state of `stage` (as `store_directory`): another value,
    another state."""
    return {
        "stage": stage, "stages": config.stages, "owned": sorted(owned), "group": config.group, "prefix": config.topics.prefix,
        "partitions": config.partitions, "rules": config.rules.ref, "lateness_s": config.lateness_s,
        "idle_s": config.idle_s, "live": config.live, "limits": repr(config.limits), "issuer": config.issuer,
        "dead_letter_retention_s": config.dead_letter_retention_s,
        # Case references are keyed by it; a digest tells a change without saying the secret.
        "reference_secret": digest(None, config.reference_secret),
    }


def software() -> list[Path]:
    """The source files whose classes a step's state is made of."""
    root = Path(__file__).resolve().parents[1]
    return [path for package in ("scoring", "codes", "streams") for path in (root / package).glob("*.py")]


async def log_facts(bootstrap: str, offsets: Mapping[Source, int]) -> dict[Source, LogFacts]:
    """What the broker holds of each partition in `offsets` (absent: no such partition):
    its start, its end as far as vouched, and the record just before the offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, for the partitions that exist
        present = [TopicPartition(topic, partition) for topic, partition in offsets
                   if partition in (consumer.partitions_for_topic(topic) or ())]
        if not present:
            return {}
        consumer.assign(present)
        starts = await consumer.beginning_offsets(present)
        ends = await consumer.end_offsets(present)
        wanted = {tp: offsets[(tp.topic, tp.partition)] - 1 for tp in present}
        wanted = {tp: at for tp, at in wanted.items() if at >= starts[tp]}
        found: dict[TopicPartition, tuple[int, str]] = {}
        for tp, at in wanted.items():
            consumer.seek(tp, at)
        # Nothing precedes the offset of the others (it is their log's start): not read at all, so
        # that their records are not taken for a wanted one's and the loop does not stop short.
        consumer.pause(*(tp for tp in present if tp not in wanted))
        deadline = time.monotonic() + PROBE_WITHIN_S
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                if records and tp in wanted and tp not in found:
                    found[tp] = (records[0].offset, digest(records[0].key, records[0].value))
                    consumer.pause(tp)
        facts = {}
        for tp in present:
            offset, tail = found.get(tp, (None, None))
            end = max(ends[tp], offset + 1) if offset is not None else ends[tp]
            facts[(tp.topic, tp.partition)] = LogFacts(starts[tp], end, tail if offset == wanted.get(tp) else None)
        return facts
    finally:
        await asyncio.wait_for(consumer.stop(), 3.0)
