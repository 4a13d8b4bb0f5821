"""`healthcode rules compare`: replay rule sets over the same events and compare them side by side.

The job itself is `healthcode.backtest.backtest_files` (files in, DataFrames out, for
notebooks too); the command adds progress bars, the table, the CSV and the HTML report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthcode.backtest import backtest_files
from healthcode.cli.common import err, out
from healthcode.cli.rules import rules_app
from healthcode.errors import EnvironmentProblem
from scoring.compare import Comparison, Period
from scoring.replay import input_size
from scoring.timeutil import format_rfc3339, parse_rfc3339

def _read_size(events: Path) -> tuple[str, int | None]:
    """What reading progress counts (JSONL bytes, Parquet rows) and the total, when known."""
    unit = "rows" if events.suffix == ".parquet" else "bytes"
    try:
        return unit, input_size(events)
    except (OSError, ValueError):
        return unit, None  # the read itself reports the problem


def compare_command(
    rulesets: list[Path] = typer.Argument(..., help="rule set files; the first is the baseline the others are compared with"),
    events: Path = typer.Option(..., "--events", help="events: JSONL (or - for stdin) or .parquet, as `healthcode simulate` writes"),
    truth: Optional[Path] = typer.Option(None, "--truth", help="truth.parquet from `healthcode simulate`: adds the backtest metrics"),
    report: Optional[Path] = typer.Option(None, "--report", help="write a self-contained HTML report (charts embedded)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="write the metrics (one column per rule set) as CSV"),
    start: Optional[str] = typer.Option(None, "--start", help="period start, RFC 3339 (default: the run's, or the first event)"),
    end: Optional[str] = typer.Option(None, "--end", help="period end, RFC 3339 (default: the run's, or the last event)"),
    workers: int = typer.Option(0, "--workers", min=0, help="replays at once (default: one per rule set, at most the CPU count)"),
    examples: int = typer.Option(5, "--examples", min=0, help="example persons shown in the report"),
) -> None:
    """Replay rule sets over the same events and compare whom each restricts and whom it misses.

    With `--truth` (from the simulator) it backtests: share of infected persons flagged while infectious and before, infectious hours left green, delay from infection to a flag, restricted person-days of the never infected, precision. Without, it compares level shares and the persons whose level differs, by the reasons behind it.

    Example: `healthcode simulate --residents 10000 --days 30 --seed 7 --format parquet --out sim/` then `healthcode rules compare rules/default.yaml rules/points.yaml --events sim/events.parquet --truth sim/truth.parquet --report compare.html --csv metrics.csv`
    """
    period = _period_option(start, end)
    began = time.perf_counter()
    workers = workers or min(len(rulesets), os.cpu_count() or 1)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    with bar:
        unit, total = _read_size(events)
        reading = bar.add_task(f"reading events ({unit})", total=total)
        replaying = bar.add_task(f"replaying {len(rulesets)} rule set(s), {workers} at a time", total=len(rulesets))

        def advance(stage: str, done: int) -> None:
            bar.update(reading if stage == "read" else replaying, completed=done)

        backtest = backtest_files(rulesets, events, truth, period, workers, examples, advance)
    comparison = backtest.comparison
    seconds = time.perf_counter() - began
    out.print(_metrics_table(comparison))
    _print_disagreements(comparison)
    out.print(
        f"{backtest.events:,} events ({backtest.malformed:,} malformed, {backtest.duplicates:,} duplicates skipped), "
        f"{comparison.population:,} persons, period {format_rfc3339(comparison.period.start)} to "
        f"{format_rfc3339(comparison.period.end)}; {seconds:.1f} s"
    )
    if csv is not None:
        _write(csv, lambda path: comparison.metrics.to_csv(path))
        out.print(f"metrics written to {escape(str(csv))}")
    if report is not None:
        from healthcode.report import render_report

        facts = {"events": str(events), "truth": str(truth) if truth else "none (level comparison only)"}
        html = render_report(comparison, "Rule set comparison", facts)
        _write(report, lambda path: path.write_text(html, encoding="utf-8"))
        out.print(f"report written to {escape(str(report))}")


def _period_option(start: str | None, end: str | None) -> Period | None:
    if (start is None) != (end is None):
        raise typer.BadParameter("give both --start and --end, or neither")
    if start is None or end is None:
        return None
    try:
        return Period(parse_rfc3339(start), parse_rfc3339(end))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--start/--end") from None


def _write(path: Path, writer: Callable[[Path], object]) -> None:
    try:
        writer(path)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {path}: {error.strerror or error}") from None


def _metrics_table(comparison: Comparison) -> Table:
    from healthcode.report import format_value

    table = Table(title=f"rule set comparison (baseline {comparison.baseline})")
    table.add_column("metric")
    table.add_column("unit", style="dim")
    for name in comparison.rule_sets:
        table.add_column(escape(name), justify="right")
    for label, row in comparison.metrics.iterrows():
        table.add_row(escape(str(label)), row["unit"], *(format_value(row[name], row["unit"]) for name in comparison.rule_sets))
    return table


def _print_disagreements(comparison: Comparison, shown: int = 5) -> None:
    for name, rows in comparison.disagreements.groupby("rule_set", sort=False):
        out.print(f"[bold]{escape(name)}[/] differs from [bold]{escape(comparison.baseline)}[/] most often as:")
        for row in rows.head(shown).itertuples():
            out.print(
                f"  {row.baseline_level} ({escape(row.baseline_reasons)}) -> {row.level} ({escape(row.reasons)}): "
                f"{row.persons:,} persons, {row.person_hours:,.0f} person-hours"
            )


def register(app: typer.Typer) -> None:
    """Add `compare` to the `rules` group (once, however often the CLI is assembled)."""
    if not any(command.name == "compare" for command in rules_app.registered_commands):
        rules_app.command("compare")(compare_command)
