"""`healthcode rules publish|active`: rule sets on the running pipeline."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import typer
from rich.table import Table

from healthcode.cli.common import configured_bootstrap, configured_topics, out
from healthcode.cli.rules import load_rules, rules_app
from healthcode.errors import EnvironmentProblem
from scoring.timeutil import format_rfc3339
from streams.reading import read_from_start
from streams.rulebook import rule_set_message
from streams.worker import WORKER_STATUS


def publish(file: Path = typer.Argument(..., help="rule set YAML to publish")) -> None:
    """Validate a rule set and publish it; every worker switches to it at its valid_from.

    Example: `healthcode rules publish rules/points.yaml`. A rule set that fails
    validation is never published (exit 1, with the file, the path and the problem).
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    rules = load_rules(file)
    topics = configured_topics()
    bootstrap = configured_bootstrap()
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
    workers silent for a minute are not shown.
    """
    latest: dict[str, dict] = {}
    for record in read_from_start(configured_bootstrap(), configured_topics().cases, idle_s=idle):
        data = orjson.loads(record.value)
        if data.get("type") == WORKER_STATUS:
            latest[data["worker"]] = data
    now = int(time.time())
    alive = {name: s for name, s in latest.items() if now - s["at"] < 60}
    if not alive:
        out.print("no worker has announced itself in the last minute")
        raise typer.Exit(1)
    table = Table("worker", "rule set in force", "rule history", "partitions", "watermark")
    for name, status in sorted(alive.items()):
        mark = status["watermark"]
        table.add_row(name, status["rule_set"], ", ".join(status["rule_sets"]),
                      ",".join(map(str, status["partitions"])) or "-",
                      format_rfc3339(mark) if mark and mark > 0 else "-")
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `publish` and `active` to the `rules` group."""
    rules_app.command("publish")(publish)
    rules_app.command("active")(active)
