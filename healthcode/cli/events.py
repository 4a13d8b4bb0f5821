"""`healthcode events schema|validate`: the event contract v1 for data sources."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import orjson
import typer

from healthcode.cli.common import out, progress
from healthcode.errors import CheckFailed, EnvironmentProblem
from scoring.events import EventError, decode_event, event_json_schema

events_app = typer.Typer(
    help=(
        "The event contract v1 that data sources publish (ping, visit, test_result, area_risk).\n\n"
        "Example: `healthcode events validate feed.jsonl` reports each bad line with its reason."
    ),
    no_args_is_help=True,
)

_SHOWN_ERRORS = 200


@events_app.command()
def schema() -> None:
    """Print the JSON Schema of contract v1 (a discriminated union on `type`).

    Example: `healthcode events schema > contract-v1.json`
    """
    out.print(orjson.dumps(event_json_schema(), option=orjson.OPT_INDENT_2).decode(), soft_wrap=True, markup=False)


@events_app.command()
def validate(
    file: Path = typer.Argument(..., help="JSONL file, one event per line ('-' for stdin)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the summary"),
) -> None:
    """Check every line against contract v1; exit 1 when any line is invalid.

    Each bad line is reported as `line N: reason`; duplicate event ids are counted
    (the pipeline applies them once) but are not errors.

    Example: `healthcode events validate feed.jsonl`, or `producer | healthcode events validate - -q`
    """
    if str(file) == "-":
        lines = sys.stdin.buffer.read().splitlines()
    else:
        try:
            lines = file.read_bytes().splitlines()
        except OSError as error:
            raise EnvironmentProblem(f"cannot read {file}: {error.strerror}") from None
    by_type: Counter[str] = Counter()
    invalid: list[tuple[int, str]] = []
    seen: set[str] = set()
    duplicates = 0
    with progress("validating", len(lines)) as bar:
        for number, line in enumerate(lines, start=1):
            if number % 10_000 == 0:
                bar.update(0, completed=number)
            if not line.strip():
                continue
            try:
                event = decode_event(line)
            except EventError as error:
                invalid.append((number, error.reason))
                continue
            by_type[event.type] += 1
            if event.event_id in seen:
                duplicates += 1
            seen.add(event.event_id)
        bar.update(0, completed=len(lines))
    if not quiet:
        for number, reason in invalid[:_SHOWN_ERRORS]:
            out.print(f"line {number}: {reason}", soft_wrap=True, markup=False)
        if len(invalid) > _SHOWN_ERRORS:
            out.print(f"... and {len(invalid) - _SHOWN_ERRORS} more invalid lines")
    valid = sum(by_type.values())
    kinds = ", ".join(f"{name} {count}" for name, count in sorted(by_type.items())) or "none"
    out.print(f"{valid} valid ({kinds}), {len(invalid)} invalid, {duplicates} duplicate event ids")
    if invalid:
        raise CheckFailed(f"{len(invalid)} of {valid + len(invalid)} events are invalid")


def register(app: typer.Typer) -> None:
    """Add the `events` group."""
    app.add_typer(events_app, name="events")
