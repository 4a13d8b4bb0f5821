"""`healthcode rules ...`: the epidemiologist's tools for rule sets.

`rules_app` is the group; other CLI modules add their own commands to it
(`rules_app.command("publish")(fn)` in their `register`); rule set files are read with
`healthcode.rulefiles.load_rules`, the one way with user-facing errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from healthcode.cli.common import err, out, read_event_file, shown
from healthcode.errors import CheckFailed, EnvironmentProblem
from healthcode.rulefiles import load_rules
from scoring.assess import assess
from scoring.events import event_key
from scoring.rules import LEVELS, RuleSetError
from scoring.ruletest import CheckResult, run_rule_tests
from scoring.rulewords import (
    case_words,
    clearance_words,
    contact_words,
    diff_rule_sets,
    lapse_words,
    points_words,
    signal_words,
)
from scoring.state import apply, new_state
from scoring.timeutil import format_rfc3339, parse_rfc3339

DEFAULT_RULES_DIR = Path("rules")
LEVEL_STYLE = {"green": "bold green", "yellow": "bold yellow", "red": "bold red"}
_SHOWN_MALFORMED = 10

rules_app = typer.Typer(
    help=(
        "Validate, read, compare and test rule sets (versioned YAML in rules/).\n\n"
        "Example: `healthcode rules show rules/default.yaml`, then `healthcode rules test`."
    ),
    no_args_is_help=True,
)


def _level(level: str) -> str:
    return f"[{LEVEL_STYLE[level]}]{level}[/]"


def _shipped() -> list[Path]:
    found = sorted(DEFAULT_RULES_DIR.glob("*.yaml"))
    if not found:
        raise EnvironmentProblem(f"no rule sets found in {DEFAULT_RULES_DIR}/ (run from the project root or name files)")
    return found


def _result_row(table: Table, ruleset: str, result: CheckResult) -> None:
    status = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
    table.add_row(
        shown(ruleset),
        shown(Path(result.file).name),
        shown(result.case),
        format_rfc3339(result.at),
        status,
        shown("\n".join(result.differences())),
    )


@rules_app.command("test")
def test_command(
    rulesets: Optional[list[Path]] = typer.Argument(None, help="rule set files (default: every rules/*.yaml)"),
    failures_only: bool = typer.Option(False, "--failures-only", help="list failed checks only"),
) -> None:
    """Run the test cases each rule set ships in rules/tests/<id>/*.yaml; exit 1 on any failure.

    Example: `healthcode rules test rules/default.yaml rules/points.yaml`
    """
    paths = rulesets or _shipped()
    table = Table(title="rule tests", show_lines=False)
    for column in ("rule set", "file", "case", "at", "result", "difference"):
        table.add_column(column, overflow="fold")
    passed = failed = 0
    untested = []
    for path in paths:
        rules = load_rules(path)
        try:
            results = run_rule_tests(rules, path)
        except RuleSetError as error:
            raise CheckFailed(f"invalid rule test file\n{error}") from None
        except UnicodeDecodeError as error:
            raise EnvironmentProblem(f"a test case file of {path} is not UTF-8 text (byte {error.start})") from None
        if not results:
            untested.append(rules.ref)
        for result in results:
            passed += result.passed
            failed += not result.passed
            if not (failures_only and result.passed):
                _result_row(table, rules.ref, result)
    if table.row_count:
        out.print(table)
    out.print(f"{passed} passed, {failed} failed, {len(paths)} rule set(s)")
    if untested:
        raise CheckFailed(f"no test cases for {', '.join(untested)} (add rules/tests/<id>/*.yaml)")
    if failed:
        raise CheckFailed(f"{failed} rule test check(s) failed")


@rules_app.command("validate")
def validate_command(files: list[Path] = typer.Argument(..., help="rule set files")) -> None:
    """Check rule set files; print each problem with file, path and what is wrong; exit 1 if any.

    Example: `healthcode rules validate rules/default.yaml`
    """
    bad = []
    for path in files:
        try:
            rules = load_rules(path)
        except CheckFailed as error:
            err.print(shown(str(error).removeprefix("invalid rule set\n")))
            bad.append(str(path))
            continue
        out.print(f"[green]ok[/] {shown(str(path))}: {shown(rules.ref)} (sha256 {rules.content_hash[:16]})")
    if bad:
        raise CheckFailed(f"invalid rule set(s): {', '.join(bad)}")


@rules_app.command("show")
def show_command(file: Path = typer.Argument(..., help="rule set file")) -> None:
    """Summarise a rule set: what each level means, what triggers it and how it clears.

    Example: `healthcode rules show rules/default.yaml`
    """
    rules = load_rules(file)
    model = rules.model
    out.print(f"[bold]{shown(rules.ref)}[/]  valid from {format_rfc3339(rules.valid_from)}  sha256 {rules.content_hash[:16]}")
    out.print(shown(model.description.strip()))
    for level in reversed(LEVELS):
        out.print()
        meaning = model.levels.get(level, "")
        out.print(f"{_level(level)}  {shown(meaning)}")
        if level == "green":
            out.print("  when no rule below applies")
        for rule in rules.rules:
            if rule.level == level:
                out.print(f"  [bold]{shown(rule.id)}[/]: on {shown(signal_words(rule, rules))}")
                for way in clearance_words(rule):
                    out.print(f"    clears {shown(way)}")
                out.print(f"    lasts at most {shown(lapse_words(rule))}")
        for points in rules.points_rules:
            threshold = getattr(points.thresholds, level, None) if level != "green" else None
            if threshold is not None:
                out.print(f"  [bold]{shown(points.id)}[/]: {threshold:g} or more weighted minutes")
    if rules.points_rules:
        out.print()
        out.print("[bold]scores[/]")
        for points in rules.points_rules:
            out.print(f"  {shown(points.id)}: {shown(points_words(points))}")
    out.print()
    out.print("[bold]cases[/]")
    out.print(f"  {shown(case_words(rules.case))}")
    if model.contacts:
        out.print("[bold]contacts[/]")
        for kind, contact in model.contacts.items():
            out.print(f"  {shown(contact_words(kind, contact))}")
    out.print(f"[bold]retention[/]  facts and presence are kept for {rules.retention_s // 86400} days")
    if model.sources:
        out.print("[bold]sources[/]")
        for source in model.sources:
            link = f" <{source.url}>" if source.url else ""
            out.print(f"  - {shown(' '.join(source.title.split()))}{shown(link)}")


@rules_app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="the rule set before"),
    new: Path = typer.Argument(..., help="the rule set after"),
    exit_code: bool = typer.Option(False, "--exit-code", help="exit 1 when the rule sets differ"),
) -> None:
    """What changed between two rule sets, in the domain's words.

    Example: `healthcode rules diff rules/default.yaml rules/points.yaml`
    """
    before, after = load_rules(old), load_rules(new)
    changes = diff_rule_sets(before, after)
    out.print(f"[bold]{shown(before.ref)}[/] -> [bold]{shown(after.ref)}[/]")
    if not changes:
        out.print("no change in meaning")
        return
    for change in changes:
        out.print(f"  - {shown(change)}")
    if exit_code:
        raise typer.Exit(1)


@rules_app.command("explain")
def explain_command(
    events: str = typer.Option(..., "--events", help="events: a JSONL file, `-` for stdin, or a .parquet file"),
    person: str = typer.Option(..., "--person", help="the person's pseudonym"),
    at: str = typer.Option(..., "--at", help="event time, RFC 3339 (e.g. 2022-04-05T12:00:00Z)"),
    rules_file: Path = typer.Option(Path("rules/default.yaml"), "--rules", help="rule set file"),
) -> None:
    """The person's level and every reason for it at event time AT, from their own events.

    Events are read as `healthcode replay` reads them (JSONL or Parquet, malformed
    lines skipped and reported, duplicates applied once) and applied in event-time
    order. Exposures need the presence index (`healthcode replay`), so contacts and
    area designations are not explained here: only the person's tests and visits.

    Example: `healthcode rules explain --events sim/events.parquet --person p0042 --at 2022-04-05T12:00:00Z`
    """
    rules = load_rules(rules_file)
    try:
        moment = parse_rfc3339(at)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--at") from None
    inputs = read_event_file(events, _SHOWN_MALFORMED)
    state = new_state(person)
    for _, _, event in sorted(inputs.others, key=lambda item: item[:2]):
        if event.type != "area_risk" and event_key(event) == person:
            state = apply(state, event, rules)
    result = assess(state, rules, moment)
    out.print(f"{shown(person)} at {format_rfc3339(moment)} under {shown(rules.ref)}: {_level(result.level)}")
    for reason in result.reasons:
        until = format_rfc3339(reason.until) if reason.until is not None else "open"
        out.print(
            f"  {_level(reason.level)} [bold]{shown(reason.rule)}[/] since {format_rfc3339(reason.since)} until {until}"
        )
        for item in reason.to_dict()["evidence"]:
            out.print("    " + shown(", ".join(f"{key}={value}" for key, value in item.items())))
    if result.next_review_at is not None:
        out.print(f"  next change of level or reasons (if nothing new arrives): {format_rfc3339(result.next_review_at)}")
    out.print("[dim]exposures (contacts, areas) are not included: they come from the presence index[/]")


def register(app: typer.Typer) -> None:
    """Add the `rules` group."""
    app.add_typer(rules_app, name="rules")
