"""`healthcode replay`: the whole scoring core over a file of events, as the stream would run it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from healthcode.cli.common import err, out, progress, read_event_file
from healthcode.rulefiles import load_rules
from healthcode.errors import EnvironmentProblem
from healthcode.snapahead import SnapAhead
from scoring.replay import level_changes, replay, write_timeline
from scoring.timeutil import parse_rfc3339

_SHOWN_MALFORMED = 50


def replay_command(
    events: str = typer.Argument(..., help="JSONL file of contract-v1 events, `-` for stdin, or a .parquet file"),
    rules: Path = typer.Option(Path("rules/default.yaml"), "--rules", "-r", help="rule set to score with"),
    out_path: Path = typer.Option(Path("timeline.jsonl"), "--out", "-o", help="where to write the level timeline"),
    until: Optional[str] = typer.Option(None, help="stop at this event time (RFC 3339, e.g. 2022-04-10T00:00:00Z)"),
    summary: bool = typer.Option(False, "--summary", help="print counts per level and exposures found"),
    snap_ahead: bool = typer.Option(
        False, "--snap-ahead", help="snap pings to H3 cells in a helper process, a batch ahead of scoring: "
        "the same timeline, faster only where a second physical core is free",
    ),
    now: Optional[str] = typer.Option(
        None, help="the intake clock of the recording (RFC 3339): events later than it plus "
        "HEALTHCODE_EVENT_TIME_AHEAD are skipped, as the stream would have dead-lettered them",
    ),
) -> None:
    """Replay EVENTS through the scoring core and write one line per change of a level or of its reasons.

    Example: `healthcode replay sim/events.jsonl --rules rules/default.yaml --out timeline.jsonl --summary`

    Each line of the timeline is {"person", "at", "level", "reasons", "rule_set"},
    ordered by `at` then `person`; a person is green before their first line. A line
    whose level is the person's previous one changes the set of active rules only.
    Malformed lines, and events outside the configured time and area limits, are skipped
    and reported with their line numbers on stderr; duplicate event ids are applied once.
    """
    rule_set = load_rules(rules)
    stop = _moment(until, "--until")
    inputs = read_event_file(events, _SHOWN_MALFORMED, _moment(now, "--now"))
    with progress("scoring", inputs.count, min_total=200_000) as bar, SnapAhead() as helper:
        result = replay(inputs, rule_set, stop, helper if snap_ahead else None,
                        lambda done: bar.update(0, completed=done))
    try:
        write_timeline(result.timeline, out_path)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {out_path}: {error.strerror or error}") from None
    changed = len(level_changes(result.timeline))
    err.print(
        f"{result.events:,} events ({result.pings:,} pings), {len(result.malformed):,} malformed skipped, "
        f"{result.duplicates:,} duplicates applied once; {len(result.timeline):,} timeline lines "
        f"({changed:,} level changes, {len(result.timeline) - changed:,} of reasons only) -> {out_path}"
    )
    if summary:
        table = Table("level", "persons at the end", title=f"replay under {result.rule_set}")
        for level, count in result.levels.items():
            table.add_row(level, f"{count:,}")
        out.print(table)
        out.print(f"exposures found: {result.exposures:,}")
        out.print(f"level changes: {changed:,}")
        out.print(f"changes of reasons only (the level staying): {len(result.timeline) - changed:,}")


def _moment(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def register(app: typer.Typer) -> None:
    """Add the top-level `replay` command."""
    app.command("replay")(replay_command)
