"""`healthcode topics create|list`: the topics on the configured broker."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from healthcode.cli.common import configured_bootstrap, configured_topics, out, shown
from healthcode.config import get_settings
from healthcode.errors import CheckFailed, EnvironmentProblem
from healthcode.retention import configured_retention
from scoring.timeutil import format_duration
from streams.reading import TopicUnavailable
from streams.topics import SPECS, partitions_of


topics_app = typer.Typer(
    help=(
        "Create and describe the Kafka topics healthcode uses.\n\n"
        "Example: `HEALTHCODE_BROKER=kafka://localhost:9092 healthcode topics create --partitions 8`."
    ),
    no_args_is_help=True,
)


@topics_app.command()
def create(
    partitions: Optional[int] = typer.Option(None, min=1, max=256, help="partitions of keyed topics (default: config)"),
) -> None:
    """Create every topic that does not exist yet on the configured broker, and show the layout each really has.

    Pings are kept for the configured rule set's longest window plus the allowed
    lateness, rounded up to days, and a day more (HEALTHCODE_RULES_FILE); dead letters
    as long, or HEALTHCODE_DEAD_LETTER_RETENTION; every other topic keeps everything.
    A topic that exists with another partition count than
    healthcode gives it (for example auto-created by a client before this command) is
    flagged; if workers cannot use it (see `healthcode worker --help`), exit 1.

    Example: `HEALTHCODE_BROKER=kafka://localhost:9092 healthcode topics create --partitions 8`
    """
    from streams.admin import create_topics, layout_problems

    settings = get_settings()
    plan = configured_retention(settings)
    keep = plan.presence_s
    count = partitions or settings.partitions
    try:
        outcomes = create_topics(
            configured_bootstrap(), configured_topics(), count, settings.replication, presence_retention_s=keep,
            dead_letter_retention_s=plan.dead_letters_s,
        )
    except TopicUnavailable as error:
        raise EnvironmentProblem(str(error)) from None
    for outcome in outcomes:
        verb = "created" if outcome.created else "exists "
        note = "" if outcome.partitions == outcome.expected else f" [bold red]but healthcode makes it with {outcome.expected}[/]"
        out.print(f"{verb} {shown(outcome.name)} ({outcome.partitions} partitions){note}")
    out.print(f"new pings topics keep {format_duration(keep)}: the rule set's longest window and the lateness, and a day")
    out.print(f"new dead-letter topics keep {format_duration(plan.dead_letters_s)} (they hold the raw rejected inputs)")
    problems = layout_problems({o.name: o.partitions for o in outcomes}, configured_topics(), count)
    if problems:
        raise CheckFailed(
            f"workers refuse these topics: {'; '.join(problems)} (auto-created by a client before `topics create`?); "
            "delete them and run `healthcode topics create` again"
        )


@topics_app.command("list")
def list_topics() -> None:
    """Show every topic healthcode uses: name, key, partitions and purpose (no broker needed).

    Example: `HEALTHCODE_TOPIC_PREFIX=test. healthcode topics list`
    """
    topics = configured_topics()
    partitions = get_settings().partitions
    table = Table("topic", "key", "partitions", "purpose")
    for spec in SPECS:
        table.add_row(topics.name(spec.role), spec.key, str(partitions_of(spec, partitions)), spec.purpose)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the `topics` group."""
    app.add_typer(topics_app, name="topics")
