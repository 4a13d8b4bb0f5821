"""`healthcode rules publish|active`: rule sets on the running pipeline."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from healthcode.cli.common import configured_bootstrap, configured_topics, out, require_usable_topics, shown
from healthcode.cli.rules import rules_app
from healthcode.cli.worker import readable
from healthcode.errors import CheckFailed, EnvironmentProblem
from healthcode.rulefiles import load_rules
from scoring.timeutil import format_rfc3339
from streams.reading import json_object, read_from_start
from streams.rulebook import RefConflict, is_published, read_rule_set, rule_set_message
from streams.step import WORKER_STATUS

STATUS_MAX_AGE_S = 60
# Reading the announcements up to a fence takes a second or two; past this the broker is in trouble.
READ_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 30


@dataclass(frozen=True)
class Announcement:
    """What one worker said about itself on the cases topic."""

    worker: str
    rule_set: str
    rule_sets: tuple[str, ...]
    partitions: tuple[int, ...]
    watermark: int | None
    at: int


def announcement(message: bytes | None) -> Announcement | None:
    """The worker status a cases-topic message carries; None for anything else or anything malformed."""
    data = json_object(message)
    if data.get("type") != WORKER_STATUS:
        return None
    worker, rule_set, rule_sets = data.get("worker"), data.get("rule_set"), data.get("rule_sets")
    partitions, watermark, at = data.get("partitions"), data.get("watermark"), data.get("at")
    if not (
        isinstance(worker, str) and isinstance(rule_set, str) and isinstance(at, int)
        and isinstance(rule_sets, list) and all(isinstance(ref, str) for ref in rule_sets)
        and isinstance(partitions, list) and all(isinstance(p, int) for p in partitions)
        and (watermark is None or isinstance(watermark, int))
    ):
        return None
    return Announcement(worker, rule_set, tuple(rule_sets), tuple(partitions), watermark, at)


def announcements() -> list[Announcement]:
    """Every worker status on the cases topic, in order, read up to now.

    Workers announce themselves every two seconds, so the topic is never quiet while
    one runs: the read ends at a fence written for it (see `streams.fence`), not at
    silence, and not at the end offset the embedded broker may under-report.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from streams.admin import describe_layout
    from streams.fence import read_to_fence

    bootstrap, topics = configured_bootstrap(), configured_topics()
    # Fails fast on an unreachable broker, and never writes a fence into a missing topic (it would be created).
    require_usable_topics(bootstrap, topics, partitions=None)
    partitions = frozenset(range(describe_layout(bootstrap, topics)[topics.cases]))

    async def read() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            return await read_to_fence(producer, bootstrap, topics.cases, partitions, f"cli-{uuid.uuid4().hex[:8]}")
        finally:
            await producer.stop()

    try:
        messages = asyncio.run(asyncio.wait_for(read(), READ_TIMEOUT_S))
    except (TimeoutError, asyncio.TimeoutError):
        raise EnvironmentProblem(f"{topics.cases} could not be read up to now within {READ_TIMEOUT_S:.0f} s") from None
    except (KafkaError, OSError) as error:
        raise EnvironmentProblem(f"cannot read {topics.cases} from {bootstrap}: {error}") from None
    return [found for found in map(announcement, messages) if found is not None]


def publish(
    file: Path = typer.Argument(..., help="rule set YAML to publish"),
    force: bool = typer.Option(
        False, "--force",
        help="publish even though workers have already scored past its valid_from (their codes since then stay as issued)",
    ),
    idle: float = typer.Option(2.0, help="seconds of silence that end the read of rule sets already published"),
) -> None:
    """Validate a rule set and publish it; every worker switches to it at its valid_from.

    A rule set takes effect at its valid_from event time. Workers that have already
    scored past that time do not go back: codes they issued since then under the old
    rules stay persons' latest codes. So a rule set whose valid_from the stream has
    passed (the newest watermark any worker announced) is refused (exit 1) unless
    `--force`. Nor is one published that fails validation (exit 1, with the file, the
    path and the problem), or whose id@version is already published with other content
    (exit 1). Publishing the same rule set again changes nothing.

    Example: `healthcode rules publish rules/next.yaml` with `valid_from:` ahead of the stream.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    rules = load_rules(file)
    topics = configured_topics()
    bootstrap = configured_bootstrap()
    records = readable(read_from_start(bootstrap, topics.rules, idle_s=idle))
    published = [found for found in (read_rule_set(record.value) for record in records) if found is not None]
    try:
        if is_published(published, rules):
            out.print(f"{shown(rules.ref)} ({rules.content_hash[:12]}) is already published: nothing to do")
            return
    except RefConflict as conflict:
        raise CheckFailed(str(conflict)) from None
    marks = [status.watermark for status in announcements() if status.watermark is not None and status.watermark > 0]
    stream_at = max(marks, default=None)
    if stream_at is not None and stream_at >= rules.valid_from and not force:
        raise CheckFailed(
            f"{rules.ref} is valid from {format_rfc3339(rules.valid_from)}, but workers have scored up to "
            f"{format_rfc3339(stream_at)}: codes issued since then under the old rules would stay. Set valid_from "
            "ahead of the stream, or pass --force to accept that"
        )
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", allow_auto_create_topics=False)
        producer.send(topics.rules, key=rules.ref.encode(), value=rule_set_message(rules, file.read_text())).get(
            SEND_TIMEOUT_S
        )
        producer.close()
    except KafkaError as error:
        raise EnvironmentProblem(f"cannot publish to {bootstrap}: {error}") from None
    out.print(
        f"published {shown(rules.ref)} ({rules.content_hash[:12]}), in force from {format_rfc3339(rules.valid_from)}"
    )
    if stream_at is not None and stream_at >= rules.valid_from:
        out.print(f"[yellow]forced:[/] workers were already at {format_rfc3339(stream_at)}; codes issued since stay")


def active() -> None:
    """Show what each running worker scores with: rule set in force, rule history, partitions.

    Example: `healthcode rules active`. Workers announce themselves every two seconds;
    the command reads their announcements up to now (a second or two) and shows the
    workers heard from in the last minute. Exit 1 when there is none.
    """
    latest = {status.worker: status for status in announcements()}
    now = int(time.time())
    alive = {name: status for name, status in latest.items() if now - status.at < STATUS_MAX_AGE_S}
    if not alive:
        out.print("no worker has announced itself in the last minute")
        raise typer.Exit(1)
    table = Table("worker", "rule set in force", "rule history", "partitions", "watermark")
    for name, status in sorted(alive.items()):
        mark = status.watermark
        table.add_row(shown(name), shown(status.rule_set), shown(", ".join(status.rule_sets)),
                      ",".join(map(str, status.partitions)) or "-",
                      format_rfc3339(mark) if mark and mark > 0 else "-")
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `publish` and `active` to the `rules` group."""
    rules_app.command("publish")(publish)
    rules_app.command("active")(active)
