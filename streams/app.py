"""The pipeline on Faust: one worker process is one Faust app around a `Step`.

- Person events (`visits`) flow through Faust's consumer group into an agent, which
  takes them in batches (`take_events`) and hands each batch to the `Step` at once.
- The broadcast topics (areas, cases, rules; unsplit, pings too) are read whole by every
  worker through a plain consumer inside an `app.service`: every worker needs every case
  notice, which a consumer group cannot give.
- With the stages (`WorkerConfig.stages`, `HEALTHCODE_STAGES`, the default), pings leave the broadcast
  read: the consumer group reads `pings`, `stays` and `exposures` too, and each goes to its
  stage (`streams.stages`): the stays stage of the assigned `pings` partitions, the
  presence stage of the assigned `stays` partitions (regions), and the `Step` of the
  assigned person partitions, scoring from `exposures`. The agent takes `stays` and
  `exposures`; the pings, many per fetch, are set aside by the consumer before Faust makes
  a message of each (`RebuildingConsumer._getmany`, `streams.pingbuffer`), and the turn
  hands them to the stays stage a batch at a time. Faust assigns the same partition numbers
  of topics with equal partition counts to one worker, so a worker's stays stage reads the
  pings of the persons it scores.
- Recovery rebuilds: Faust seeks an assigned partition to its committed offset, so
  the consumer here (`RebuildingConsumer`) overrides `seek_to_committed` to read the
  fenced topics (`streams.fence`), start a fresh `Step` and seek every input to its
  beginning instead. An assignment first looks for a snapshot of its partitions'
  state (`streams.snapshotting` decides when, `streams.snapshots` stores them): if the
  broker still holds what it read, the worker resumes from it and seeks every input
  to the snapshot's offsets (`streams.resume`). No Faust table or changelog holds state (on the embedded broker
  their recovery loses updates, see ../shared/FAUST-ON-TANSU.md), and sends are
  at-least-once: duplicates are avoided by the fenced read of `codes`.
- Faust's web server serves /healthz, /metrics, /residents/{pseudonym}/code and /app/resident
  (`streams.web`), without Faust's own pages.

`healthcode worker` runs a Faust worker on this app; so does
`faust -A streams.app worker --web-port 8080` (settings from `HEALTHCODE_*`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams import metrics
from streams.fence import read_to_fence
from streams.health import Health
from streams.pingbuffer import PingBuffer
from streams.resume import PRESENCE, STAGE, STAYS, AnyStep, caught_up
from streams.snapshots import Snapshot
from streams.snapshotting import RebuildDeferred, Snapshotter
from streams.stages import RegionStep, StaysStep
from streams.step import End, Known, Output, Record, Source, Step, WorkerConfig, WorkerView
from streams.topics import SPECS
from streams.web import add_routes

FETCH_WAIT_MS = 100
"""How long the broker may hold an empty fetch, for both consumers (the broadcast one and Faust's for
visits): a quiet partition's "caught up" is at most about this stale."""
PROBE_EVERY_S = 1.0
"""How often the worker asks the broker for its metadata (is it there, are the topics there)."""
PROBE_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 3.0
"""How long closing this app's own Kafka clients may take: a broker that is gone does not answer."""
STOP_WITHIN_S = 8.0
"""A signal stops the worker within this (the promise is 10 s: the process still has to end)."""
METADATA_MAX_AGE_MS = 5000
"""How stale the group consumer's view of the topics may get: a topic created again (a broker
that lost its data) is assigned within this, not the Kafka client's default of 5 minutes."""
FENCE_TIMEOUT_S = 30.0
"""How long a rebuild waits for a fence it wrote (milliseconds, normally). A topic deleted or
created again in between loses the fence: the rebuild then starts over with a new one."""

log = logging.getLogger(__name__)


def write_status(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, through a temporary file no other writer uses."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as sink:
            sink.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


class QuickFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its broker holding an empty fetch `FETCH_WAIT_MS`, not Faust's fixed 1.5 s.

    A quiet visits partition counts as caught up only as far as the fetch answer before its
    latest vouches (`streams.eventtime.Reports`), and case progress, hence every watermark,
    follows it: with 1.5 s between answers the watermark ran 2 s of wall time behind the
    newest input instead of the allowed lateness, and so did every code that waits for it
    (a contact still going on when its case became known, falls).
    """

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by `start()` to build the fetcher; Faust offers no setting for it.
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS
        return consumer


class RebuildingConsumer(faust_aiokafka.Consumer):
    """Seeks the assigned partitions to their beginning, after a fresh `Step` (and stages) is made for them."""

    def _new_consumer_thread(self) -> QuickFetchThread:
        return QuickFetchThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:
        """Faust's fetch, less the `pings` records: those go to the pipeline's `PingBuffer` in bulk, not
        one Faust message each through the conductor and the agent (`streams.pingbuffer`)."""
        pipeline: Pipeline = self.app.pipeline  # type: ignore[attr-defined]
        buffer, wait_s = pipeline.pings, pipeline.config.batch_timeout_s
        if active_partitions and buffer.full and any(tp.topic == buffer.topic for tp in active_partitions):
            await buffer.room(wait_s)
            if buffer.full:
                # The other topics are fetched meanwhile (not for longer than it takes to look again).
                active_partitions = {tp for tp in active_partitions if tp.topic != buffer.topic}
                timeout = min(timeout, wait_s)
                if not active_partitions:
                    return {}  # the client reads no partitions as every partition
        ticket = buffer.ticket()
        fetched = await super()._getmany(active_partitions, timeout)
        rest = {}
        for tp, records in fetched.items():
            if tp.topic == buffer.topic:
                buffer.hold(ticket, tp.partition, records)
            else:
                rest[tp] = records
        return rest

    def answered_ms(self, tp: TP) -> float | None:
        """When the client last had the broker's answer about `tp`'s end (epoch ms; None: not yet)."""
        try:
            return self._thread._ensure_consumer().last_poll_timestamp(tp)
        except (AssertionError, ConsumerNotStarted):
            return None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        pipeline: Pipeline = self.app.pipeline  # type: ignore[attr-defined]
        partitioned = pipeline.partitioned_topics()
        mine = {tp for tp in self.assignment() if tp.topic in partitioned}
        earliest = dict(await self.earliest_offsets(*mine)) if mine else {}
        offsets = await pipeline.rebuild(
            {topic: frozenset(tp.partition for tp in mine if tp.topic == topic) for topic in partitioned},
            {(tp.topic, tp.partition): offset for tp, offset in earliest.items()})
        starts = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}
        if starts:
            await self.seek_wait(starts)
        # What Faust takes as committed from here: acks of the replayed offsets count again.
        committed.update(starts)
        return committed


class RebuildingTransport(faust_aiokafka.Transport):
    Consumer = RebuildingConsumer


class PipelineWeb(AiohttpWeb):
    """Faust's aiohttp server without Faust's index page: nothing here browses anything."""

    production_blueprints: Any = []


class PipelineApp(faust.App):
    """A Faust app that knows its `Pipeline`, rebuilds on assignment and serves only our routes."""

    pipeline: "Pipeline"

    def _new_transport(self) -> Any:
        return RebuildingTransport(self.conf.broker_consumer, self)

    def _new_web(self) -> Any:
        return PipelineWeb(self)

    async def on_start(self) -> None:
        await super().on_start()
        # Before the agents start, so the group's first subscription has every partitioned topic.
        for topic in self.pipeline.unacked:
            self.topics.add(topic)

    def on_webserver_init(self, web: Any) -> None:
        add_routes(web.web_app, self.pipeline.view, self.pipeline.config)


class _FenceProducer:
    """Faust's producer as `read_to_fence` calls a producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None,
                            partition: int | None = None) -> Any:
        return await self.app.producer.send_and_wait(topic, key, value, partition, None, None)


class Pipeline:
    """One worker: the Faust app, its agent and service, and the current `Step`."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        self.view = WorkerView(rule_set=config.rules.ref, rule_sets=[config.rules.ref],
                               health=Health(config.stall_timeout_s, last_progress=time.monotonic()))
        self.step: Step | None = None
        self.stays: StaysStep | None = None
        """With the stages: the stays stage of the assigned `pings` partitions."""
        self.regions: RegionStep | None = None
        """With the stages: the presence stage of the assigned `stays` partitions (regions)."""
        self.assigned: dict[str, frozenset[int]] = {}
        """Per partitioned input topic, the partitions the group gave this worker."""
        self._turn = asyncio.Lock()
        self._wide: AIOKafkaConsumer | None = None
        self._client: AIOKafkaClient | None = None
        """For metadata requests: the probe, and a rebuild's check that every topic is there."""
        self.read_through: dict[Source, int] = {}
        """Per input partition, the offset after the last message ever read: its log never ends
        below that unless the broker lost data. Kept across rebuilds, which read it again."""
        self.topics_present = True
        self.more = False
        """A stage has work ready that its turn's bound left, or pings are held for the stays stage."""
        self.stays_more = False
        """The stays stage's last turn left it pings to feed: it takes no more until it has fed them."""
        self.rebuild_pending = False
        """Start over at the next turn: the broker lost data, a new rule set, or a rebuild cut short."""
        topics = config.topics
        datadir = config.data_dir / "faust" if config.data_dir is not None else tempfile.mkdtemp(prefix="faust-")
        self.app = PipelineApp(
            config.group,
            broker=[f"kafka://{host}" for host in config.bootstrap.split(",")],
            autodiscover=False,
            datadir=str(datadir),
            topic_disable_leader=True,
            topic_allow_declare=False,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=config.session_timeout_ms / 1000,
            broker_heartbeat_interval=config.heartbeat_interval_ms / 1000,
            broker_commit_interval=config.commit_interval_s,
            broker_max_poll_records=config.batch_size,
            consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
            stream_wait_empty=False,
            web_enabled=bool(config.web_port),
            web_port=config.web_port or 6066,
            web_bind="127.0.0.1",
            web_host="127.0.0.1",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            web_metrics_enabled=False,
        )
        self.app.pipeline = self
        self.snapshots = Snapshotter(config, self.name, self.view, self.app)
        self.may_resume = self.snapshots.enabled
        """An assignment resumes from a snapshot if it can; a start over because the broker lost
        data or a new rule set arrived rebuilds from the start (until the next rebalance)."""
        self.pings = PingBuffer(topics.pings, config.batch_size)
        """Staged: the assigned `pings` partitions' records, fetched and not yet taken by the stays stage."""
        agent_topics = [topic for topic in self.partitioned_topics() if topic != topics.pings]
        partitioned = self.app.topic(*agent_topics, key_serializer="raw", value_serializer="raw")
        self.app.agent(partitioned, name=f"{config.group}.visits")(self._take_partitioned)
        self.unacked = [self.app.topic(topics.pings, acks=False)] if config.stages else []
        """Staged, `pings`: read through the consumer group but not through the agent (the consumer
        sets them aside, `RebuildingConsumer._getmany`), so Faust neither acks nor commits them (a
        rebuild or a snapshot says where they are read from) nor waits for a stream to take them."""
        self.app.service(_Broadcast(self))
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)

    async def _on_revoked(self, app: Any, revoked: Any, **_: Any) -> None:
        self.may_resume = self.snapshots.enabled
        self.snapshots.stopped()
        # From here on another worker may own them: publish nothing more for their persons.
        if self.step is not None:
            self.step.disown()
        # Stages send nothing more for partitions another worker may own now.
        self.stays = self.regions = None
        self.pings.revoked()
        # Nor are their ends asked for until the next assignment's rebuild: the consumer (on its
        # own thread) asserts a partition is assigned before it tells its end, and the turns go on.
        self.assigned = {}
        self.view.ready = False

    async def _on_assigned(self, app: Any, assigned: Any, **_: Any) -> None:
        # Faust seeks (and so this app rebuilds) only when something is assigned; a worker
        # with no partition of its own still reads the broadcast topics and says so.
        if not any(tp.topic in self.partitioned_topics() for tp in assigned):
            await self.rebuild({}, {})

    def partitioned_topics(self) -> tuple[str, ...]:
        """The inputs read through Faust's consumer group, each worker its partitions (staged, all but
        `pings` through the agent)."""
        topics = self.config.topics
        if self.config.stages:
            return topics.visits, topics.pings, topics.stays, topics.exposures
        return (topics.visits,)

    async def _take_partitioned(self, stream: Any) -> None:
        """The agent: the assigned partitions' records, a batch at a time, into the step that reads each."""
        config = self.config
        async for events in stream.take_events(config.batch_size, within=config.batch_timeout_s):
            records = [
                Record(m.topic, m.partition, m.offset, m.key, m.value, int(m.timestamp * 1000))
                for m in (event.message for event in events)
            ]
            async with self._turn:
                # Under the turn's lock: a snapshot sees what is read and what the step took alike.
                self._saw(records)
                now, wall = time.monotonic(), self.config.clock()
                for step, taken in self._routed(records):
                    step.take(taken, now, wall)

    def _routed(self, records: list[Record]) -> list[tuple[Step | StaysStep | RegionStep, list[Record]]]:
        """`records` of the partitioned topics, by the step that reads them (none while none is built)."""
        topics = self.config.topics
        readers: dict[str, Step | StaysStep | RegionStep | None] = {
            topics.visits: self.step, topics.exposures: self.step, topics.stays: self.regions}
        routed: dict[str, list[Record]] = {}
        for record in records:
            routed.setdefault(record.topic, []).append(record)
        return [(reader, taken) for topic, taken in routed.items() if (reader := readers.get(topic)) is not None]

    def _steps(self) -> list[Step | StaysStep | RegionStep]:
        """Every step of this worker, upstream first: a turn advances them in this order."""
        return [step for step in (self.stays, self.regions, self.step) if step is not None]

    async def rebuild(self, assigned: Mapping[str, frozenset[int]], starts: Mapping[Source, int]) -> Mapping[Source, int]:
        """Start over for an assignment (`assigned`: per partitioned topic, this worker's partitions):
        from a snapshot, or from what the fenced topics hold and every input from its start
        (`starts`: the assigned partitions'); where the assigned partitions are to be read from."""
        async with self._turn:
            if self.step is not None:
                self.step.disown()
            self.step = self.stays = self.regions = None
            self.view.ready = False
            self.assigned = {topic: frozenset(parts) for topic, parts in assigned.items()}
            owned = self.assigned.get(self.config.topics.visits, frozenset())
            try:
                offsets = await self._build(owned, starts)
            except RebuildDeferred as deferred:
                log.warning("rebuild deferred: %s", deferred)
                self.rebuild_pending = True
                # A step restored from its snapshot before the deferral showed itself in the view
                # (`Step.show`): no step is the worker's, nothing is to be served or called ready.
                self.view.ready, self.view.owned = False, frozenset()
                offsets = starts
            # The consumer seeks there next: the pings held were fetched before.
            pings = self.config.topics.pings
            self.pings.restart({partition: offset for (topic, partition), offset in offsets.items() if topic == pings})
            self.stays_more = False
            return offsets

    async def _build(self, owned: frozenset[int], starts: Mapping[Source, int]) -> Mapping[Source, int]:
        """The `Step`, once the broker has every topic and the fenced reads met their fences."""
        config, topics = self.config, self.config.topics
        # The probe may not have seen yet that the topics are gone; a fence written now
        # would create them with the broker's defaults (and the embedded broker then
        # wedges the partition when `topics create` runs).
        try:
            missing = await self._missing_topics()
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            raise RebuildDeferred(f"the broker does not answer: {error}") from None
        if missing:
            self.topics_present = False
            self._lost(f"topic {', '.join(missing)} gone")
            raise RebuildDeferred(f"topic {', '.join(missing)} gone")
        self.topics_present = True
        self.snapshots.rebuilding()
        wide = await self._wide_consumer()
        if self.may_resume:
            resumed = await self._resume(owned, wide)
            if resumed is not None:
                return resumed
        partitions = [TopicPartition(topic, p) for topic, p in self._wide_sources()]
        await wide.seek_to_beginning(*partitions)
        letters_tp = TopicPartition(topics.dead_letter, 0)
        beginnings = await wide.beginning_offsets([*partitions, letters_tp])
        rules = await self._read_to_fence(topics.rules, frozenset({0}))
        codes = await self._read_to_fence(topics.codes, owned) if owned else []
        letters = await self._read_to_fence(topics.dead_letter, frozenset({0}))
        known = Known.read(
            config, rules, codes, letters, wall=config.clock(),
            pings_truncated=any(offset > 0 for tp, offset in beginnings.items() if tp.topic == topics.pings),
            letters_truncated=beginnings[letters_tp] > 0,
        )
        wide_starts = {(tp.topic, tp.partition): offset for tp, offset in beginnings.items() if tp != letters_tp}

        def read_by(*read: str) -> dict[Source, int]:
            """Where a step's inputs start: the broadcast ones, and its own of the assigned ones."""
            return {**wide_starts, **{source: offset for source, offset in starts.items() if source[0] in read}}

        now = time.monotonic()
        self.step = Step(config, self.name, owned, known, now, self.view, starts=read_by(topics.visits, topics.exposures))
        if config.stages:
            # Dead letters are due by position: the stays stage answers for pings, the step for the rest.
            self.stays = StaysStep(config, known.history, self.assigned.get(topics.pings, frozenset()),
                                   known.dead_lettered, now, read_by(topics.pings))
            self.stays.named = self.view.residents
            self.regions = RegionStep(config, known.history, self.assigned.get(topics.stays, frozenset()), now,
                                      read_by(topics.stays))
        self._built()
        metrics.REBUILDS.inc()
        return starts

    def _built(self) -> None:
        self.view.health.rebuilt()
        self.snapshots.started()

    def _to_build(self, owned: frozenset[int]) -> list[tuple[str, frozenset[int], type[AnyStep]]]:
        """The steps an assignment makes: each one's stage, the partitions it owns and its kind."""
        topics, assigned = self.config.topics, self.assigned
        stages: list[tuple[str, frozenset[int], type[AnyStep]]] = [(STAGE, owned, Step)]
        if self.config.stages:
            stages += [(STAYS, assigned.get(topics.pings, frozenset()), StaysStep),
                       (PRESENCE, assigned.get(topics.stays, frozenset()), RegionStep)]
        return stages

    async def _resume(self, owned: frozenset[int], wide: AIOKafkaConsumer) -> Mapping[Source, int] | None:
        """Every step of the assignment from the latest snapshot of its state the broker still
        backs, caught up with what was sent after it and every input sought to its offsets:
        where the assigned partitions are to be read from. None (and one line why) when a step
        has none: then every step rebuilds from the start."""
        config, topics = self.config, self.config.topics
        found: list[tuple[str, AnyStep, Snapshot]] = []
        for stage, parts, kind in self._to_build(owned):
            latest = await self.snapshots.latest(stage, parts, kind)
            if latest is None:
                return None
            found.append((stage, *latest))
        letters = await self._read_to_fence(topics.dead_letter, frozenset({0}))
        for stage, step, snapshot in found:
            codes = []
            if isinstance(step, Step) and owned:
                fenced = {p: snapshot.offsets[(topics.codes, p)] for p in owned}
                codes = await self._read_to_fence(topics.codes, owned, fenced)
            caught_up(step, codes, letters)
        # The broadcast consumer feeds every step: it reads on from the earliest a step needs (a
        # step passes over what it took before its snapshot's offset).
        for source in self._wide_sources():
            offsets = [snapshot.offsets[source] for _, _, snapshot in found if source in snapshot.offsets]
            if offsets:
                wide.seek(TopicPartition(*source), min(offsets))
        self._resumed(found)
        log.warning("resumed from snapshots taken %.0f s ago: replaying only what follows them",
                    config.clock() - min(snapshot.taken_at for _, _, snapshot in found))
        partitioned = self.partitioned_topics()
        return {source: offset for _, step, snapshot in found for source, offset in snapshot.offsets.items()
                if source[0] in partitioned and source in step.positions.covered()}

    def _resumed(self, found: list[tuple[str, AnyStep, Snapshot]]) -> None:
        """The steps, each restored from its snapshot, are the worker's from here."""
        for stage, step, snapshot in found:
            if isinstance(step, Step):
                self.step = step
            elif isinstance(step, StaysStep):
                self.stays = step
            else:
                self.regions = step
        if self.stays is not None:
            # The view's residents (the scoring step's snapshot) hold those the stays stage named.
            self.stays.named = self.view.residents
        self.view.health.rebuilt()
        self.snapshots.resumed(found)

    async def _read_to_fence(self, topic: str, partitions: frozenset[int],
                             starts: Mapping[int, int] | None = None) -> list[bytes]:
        fenced = read_to_fence(_FenceProducer(self.app), self.config.bootstrap, topic, partitions, self.name, starts)
        try:
            return await asyncio.wait_for(fenced, FENCE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise RebuildDeferred(f"{topic}: the fence written did not come back within {FENCE_TIMEOUT_S:g} s") from None

    def _wide_sources(self) -> list[Source]:
        topics, partitions = self.config.topics, self.config.partitions
        # Staged, each worker reads only its own ping partitions, through the group.
        pings = [] if self.config.stages else [(topics.pings, p) for p in range(partitions)]
        return pings + [(t, 0) for t in (topics.areas, topics.cases, topics.rules)]

    async def _wide_consumer(self) -> AIOKafkaConsumer:
        if self._wide is None:
            # Earliest: a partition assigned before it is sought (a rebuild looks for a snapshot
            # first) must not be reset to a reported end offset, which the embedded broker
            # under-reports: the step would wait for ever for the records before it.
            wide = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, enable_auto_commit=False,
                                    max_poll_records=self.config.batch_size, fetch_max_wait_ms=FETCH_WAIT_MS,
                                    auto_offset_reset="earliest")
            await wide.start()
            wide.assign([TopicPartition(topic, p) for topic, p in self._wide_sources()])
            self._wide = wide
        return self._wide

    async def close(self) -> None:
        """Close the broadcast consumer (for at most `CLOSE_TIMEOUT_S`) and drop the status file."""
        self.snapshots.cancel()
        if self._wide is not None:
            await _closed_within(self._wide.stop(), "the broadcast consumer")
            self._wide = None
        if self._client is not None:
            await _closed_within(self._client.close(), "the metadata client")
            self._client = None
        self.drop_status()

    def drop_status(self) -> None:
        """Remove this worker's status file: it has stopped."""
        if self.config.status_dir is not None:
            self._status_path().unlink(missing_ok=True)

    def _status_path(self) -> Path:
        assert self.config.status_dir is not None
        return self.config.status_dir / f"{self.name}.json"

    def _saw(self, records: list[Record]) -> None:
        last: dict[Source, Record] = {}
        for record in records:
            source = (record.topic, record.partition)
            self.read_through[source] = max(self.read_through.get(source, 0), record.offset + 1)
            if source not in last or record.offset > last[source].offset:
                last[source] = record
        self.snapshots.saw(last.values())

    async def _missing_topics(self) -> list[str]:
        """The worker's topics the broker does not have (a metadata request, bounded in time)."""
        if self._client is None:
            self._client = AIOKafkaClient(bootstrap_servers=self.config.bootstrap)
        if not self._client.cluster.brokers():
            await asyncio.wait_for(self._client.bootstrap(), PROBE_TIMEOUT_S)
        cluster = await asyncio.wait_for(self._client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        return sorted({self.config.topics.name(spec.role) for spec in SPECS} - cluster.topics())

    async def probe(self) -> None:
        """Ask the broker for its metadata: is it there, are our topics there; have logs lost data."""
        now = time.monotonic()
        try:
            missing = await self._missing_topics()
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            metrics.BROKER_UP.set(0)
            if self.view.health.broker_failed(now, str(error) or type(error).__name__):
                log.warning("the broker at %s does not answer: %s", self.config.bootstrap, error)
        else:
            metrics.BROKER_UP.set(1)
            began = self.view.health.broker_answered()
            if began is not None:
                log.warning("the broker at %s answers again after %.0f s", self.config.bootstrap, now - began)
            if missing:
                self._lost(f"topic {', '.join(missing)} gone")
            self.topics_present = not missing
        self._check_log_ends()

    def _check_log_ends(self) -> None:
        """An input partition whose log now ends below what was read from it: the broker lost data."""
        ends: dict[Source, int | None] = {}
        if self._wide is not None:
            ends.update({(tp.topic, tp.partition): self._wide.highwater(tp) for tp in self._wide.assignment()})
        if self.step is not None:
            ends.update({(topic, p): self.app.consumer.highwater(TP(topic, p))
                         for topic, parts in self.assigned.items() for p in parts})
        for (topic, partition), end in ends.items():
            read = self.read_through.get((topic, partition))
            if end is not None and read is not None and end < read:
                self._lost(f"{topic}[{partition}] ends at offset {end}, {read} were read")

    def _lost(self, what: str) -> None:
        """The broker lost data: rebuild from what it has once every topic is there; say so once."""
        self.rebuild_pending = True
        self.may_resume = False
        self.read_through.clear()
        if self.view.health.data_lost:
            return
        log.error("the broker lost data (%s): the worker rebuilds from what it has now", what)
        metrics.BROKER_DATA_LOSSES.inc()
        self.view.health.lost_data(what)

    async def turn(self) -> None:
        """Read the broadcast topics, advance the `Step`, send what it decided; start over when due."""
        if not self.topics_present:
            # Anything written now would create the lost topics with the broker's defaults: wait for them.
            await asyncio.sleep(self.config.batch_timeout_s)
            return
        if self.rebuild_pending:
            self.rebuild_pending = False
            consumer = self.app.consumer
            # A seek while Faust's fetcher hands on a batch fetched before it: the fetcher then notes the
            # batch's offsets as read and drops the records the seek asks for up to there, and a stage
            # whose first record never arrives takes none (`Positions`: the stages stalled after a new
            # rule set). Stopped, the fetcher leaves the batch; a rebalance stops it likewise.
            stopped = consumer.flow_active
            if stopped:
                consumer.stop_flow()
                await asyncio.sleep(0)
            try:
                # Faust's seek to committed offsets is where this app rebuilds (`RebuildingConsumer`).
                await consumer.perform_seek()
            except IllegalStateError:
                # A rebalance is under way: the assignment that follows rebuilds anyway.
                pass
            finally:
                if stopped:
                    consumer.resume_flow()
            if self.rebuild_pending:
                await asyncio.sleep(self.config.batch_timeout_s)  # deferred: try again shortly
            return
        if self.step is None:
            await asyncio.sleep(self.config.batch_timeout_s)
            return
        wide = await self._wide_consumer()
        # A stage that left work for the next turn (`Output.more`) does not wait for input.
        fetched = await wide.getmany(timeout_ms=0 if self.more else int(self.config.batch_timeout_s * 1000),
                                     max_records=self.config.batch_size)
        async with self._turn:
            step = self.step
            if step is None:
                return
            steps = self._steps()
            now, wall = time.monotonic(), self.config.clock()
            for batch in fetched.values():
                records = [Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in batch]
                self._saw(records)
                for each in steps:
                    each.take(records, now, wall)
            if self.stays is not None and not self.stays_more:
                # A batch at a time, as the stage feeds its loops: what it holds (and a snapshot
                # pickles) stays about a batch and what event time holds back, however fast pings come.
                pings = self.pings.take(self.config.batch_size)
                self._saw(pings)
                self.stays.take(pings, now, wall)
            # Two consumers fetch on their own schedules: a visits partition reported at its end a
            # moment ago must not count as far as pings read since (`Reports`). The clients
            # stamp their fetch answers in wall milliseconds.
            ends, read_ms = self._ends(), time.time() * 1000
            self.more = False
            for stage in steps[:-1]:
                staged_output = stage.advance(now, wall, ends, read_ms)
                if stage is self.stays:
                    self.stays_more = staged_output.more
                self.more |= staged_output.more
                await self._send(staged_output)
            self.more |= len(self.pings) > 0
            # The step is told of the partitions it reads only (staged: not the stages' own).
            staged = {self.config.topics.pings, self.config.topics.stays, self.config.topics.exposures}
            output = step.advance(now, wall, {source: end for source, end in ends.items()
                                              if not (self.config.stages and source[0] in staged)}, read_ms)
            await self._send(output)
            if any(each.new_rules for each in steps):
                self.rebuild_pending = True
                self.may_resume = False
                return
            taken = await self.snapshots.take(self._steps())
        self.snapshots.keep(taken)

    def _ends(self) -> dict[Source, End]:
        """What each consumed partition's client last heard of its end: the broadcast ones' and the assigned ones'."""
        wide = self._wide
        assert wide is not None
        ends = {(tp.topic, tp.partition): End(wide.highwater(tp), wide.last_poll_timestamp(tp))
                for tp in wide.assignment()}
        consumer: RebuildingConsumer = self.app.consumer  # type: ignore[assignment]
        for topic, partitions in self.assigned.items():
            for partition in partitions:
                tp = TP(topic, partition)
                ends[(topic, partition)] = End(consumer.highwater(tp), consumer.answered_ms(tp))
        return ends

    async def _send(self, output: Output) -> None:
        producer = self.app.producer
        sent = [await producer.send(m.topic, m.key, m.value, m.partition, None, None) for m in output.messages]
        if output.status is not None and self.config.status_dir is not None:
            try:
                write_status(self._status_path(), output.status)
            except OSError as error:
                # Bookkeeping for operators: never a reason to stop scoring.
                log.warning("cannot write the status file %s: %s", self._status_path(), error.strerror)
        if output.settled_through is not None:
            # Settled means published: wait until the broker has every code of this turn.
            await asyncio.gather(*sent)
            self.view.settled_through = output.settled_through

    @property
    def final_at(self) -> int:
        """Every level change up to this event time is published."""
        return self.view.settled_through

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run the app in this event loop (tests, the benchmark) until `stop` is set."""
        app = self.app
        app.finalize()
        if self.config.web_port:
            app.web.init_server()
        await app.start()
        try:
            await stop.wait()
        finally:
            await app.stop()


class _Broadcast(faust.Service):
    """The plain consumer of the broadcast topics, and the loop that turns the `Step`."""

    def __init__(self, pipeline: Pipeline, **kwargs: Any) -> None:
        self.pipeline = pipeline
        super().__init__(**kwargs)

    @faust.Service.task
    async def _probe(self) -> None:
        while not self.should_stop:
            await self.pipeline.probe()
            await self.sleep(PROBE_EVERY_S)

    @faust.Service.task
    async def _turns(self) -> None:
        pipeline = self.pipeline
        while not self.should_stop:
            await pipeline.turn()
            pipeline.view.health.progressed(time.monotonic())
            # A fetch with data ready returns without yielding: let the agent, heartbeats and web requests run.
            await asyncio.sleep(0)

    async def on_stop(self) -> None:
        await self.pipeline.close()


class _BoundedWorker(faust.Worker):
    """A Faust worker whose stop on a signal takes at most `STOP_WITHIN_S`, broker or not.

    Faust's stop commits offsets and flushes the producer, which wait on a broker that
    may be gone. Past the bound the process ends anyway (exit 0): recovery rebuilds, so
    a stop cut short loses nothing.
    """

    def __init__(self, pipeline: Pipeline, **kwargs: Any) -> None:
        self.pipeline = pipeline
        super().__init__(pipeline.app, **kwargs)
        # Faust's start-up spinner writes terminal escapes even into a log file.
        self.spinner = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            watchdog = threading.Timer(STOP_WITHIN_S, self._abandon)
            watchdog.daemon = True
            watchdog.start()
        super()._schedule_shutdown(signal)

    def _abandon(self) -> None:
        log.warning("the worker did not stop within %g s of the signal (broker unreachable?): it exits now",
                    STOP_WITHIN_S)
        self.pipeline.drop_status()
        logging.shutdown()
        os._exit(0)


def run_worker(config: WorkerConfig, logging_config: dict[str, Any] | None = None) -> int:
    """Run a Faust worker on a `Pipeline` for `config` until SIGTERM or Ctrl-C; its exit code."""
    worker = _BoundedWorker(Pipeline(config), loglevel="WARNING", quiet=True, logging_config=logging_config)
    try:
        worker.execute_from_commandline()
    except SystemExit as ended:
        return ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
    return 0


def __getattr__(name: str) -> Any:
    """`app` for `faust -A streams.app worker`, configured from `HEALTHCODE_*` when first asked for."""
    if name != "app":
        raise AttributeError(name)
    import sys

    from healthcode.cli.worker import configured_worker
    from healthcode.errors import EnvironmentProblem

    try:
        config = configured_worker(web_port=6066)
    except EnvironmentProblem as problem:
        # Faust's command line would print a traceback: one line and exit 2, as healthcode does.
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    app = Pipeline(config).app
    globals()["app"] = app
    return app


async def _closed_within(closing: Awaitable[Any], what: str) -> None:
    """Wait at most `CLOSE_TIMEOUT_S` for `closing`: an unreachable broker must not hold up a stop."""
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    except asyncio.TimeoutError:
        log.warning("%s did not close within %g s (broker unreachable?)", what, CLOSE_TIMEOUT_S)
