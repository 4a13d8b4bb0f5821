"""`healthcode rules publish|active`: rule sets on the running pipeline."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from healthcode.cli.common import configured_bootstrap, configured_topics, out
from healthcode.cli.rules import rules_app
from healthcode.rulefiles import load_rules
from healthcode.cli.worker import readable
from healthcode.errors import CheckFailed, EnvironmentProblem
from scoring.timeutil import format_rfc3339
from streams.reading import json_object, read_from_start
from streams.rulebook import RefConflict, is_published, read_rule_set, rule_set_message
from streams.worker import WORKER_STATUS

STATUS_MAX_AGE_S = 60


def publish(
    file: Path = typer.Argument(..., help="rule set YAML to publish"),
    idle: float = typer.Option(2.0, help="seconds of silence that end the read of rule sets already published"),
) -> None:
    """Validate a rule set and publish it; every worker switches to it at its valid_from.

    Example: `healthcode rules publish rules/points.yaml`. A rule set that fails
    validation is never published (exit 1, with the file, the path and the problem);
    nor is one whose id@version is already published with other content (exit 1).
    Publishing the same rule set again changes nothing.
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
            out.print(f"{rules.ref} ({rules.content_hash[:12]}) is already published: nothing to do")
            return
    except RefConflict as conflict:
        raise CheckFailed(str(conflict)) from None
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send(topics.rules, key=rules.ref.encode(), value=rule_set_message(rules, file.read_text())).get(30)
        producer.close()
    except KafkaError as error:
        raise EnvironmentProblem(f"cannot publish to {bootstrap}: {error}") from None
    out.print(f"published {rules.ref} ({rules.content_hash[:12]}), in force from {format_rfc3339(rules.valid_from)}")


def active(idle: float = typer.Option(3.0, help="seconds of silence that end the read")) -> None:
    """Show what each running worker scores with: rule set in force, rule history, partitions.

    Example: `healthcode rules active`. Workers announce themselves every few seconds;
    workers silent for a minute are not shown. Exit 1 when no worker is running.
    """
    latest: dict[str, dict] = {}
    for record in readable(read_from_start(configured_bootstrap(), configured_topics().cases, idle_s=idle)):
        data = json_object(record.value)
        if data.get("type") == WORKER_STATUS:
            latest[data["worker"]] = data
    now = int(time.time())
    alive = {name: s for name, s in latest.items() if now - s["at"] < STATUS_MAX_AGE_S}
    if not alive:
        out.print("no worker has announced itself in the last minute")
        raise typer.Exit(1)
    table = Table("worker", "rule set in force", "rule history", "partitions", "watermark")
    for name, status in sorted(alive.items()):
        mark = status["watermark"]
        table.add_row(escape(name), escape(status["rule_set"]), escape(", ".join(status["rule_sets"])),
                      ",".join(map(str, status["partitions"])) or "-",
                      format_rfc3339(mark) if mark and mark > 0 else "-")
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `publish` and `active` to the `rules` group."""
    rules_app.command("publish")(publish)
    rules_app.command("active")(active)
