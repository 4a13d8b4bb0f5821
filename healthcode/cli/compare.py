"""`healthcode rules compare`: replay rule sets over the same events and compare them side by side.

`backtest_files` is the whole job for a notebook as well (files in, DataFrames out);
the command adds progress bars, the table, the CSV and the HTML report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthcode.cli.common import err, out
from healthcode.cli.rules import load_rules, rules_app
from healthcode.errors import EnvironmentProblem
from scoring.compare import Comparison, Period, compare, timeline_frame, truth_frame
from scoring.replay import Inputs, input_size, read_events, replay
from scoring.timeutil import format_rfc3339, parse_rfc3339

Advance = Callable[[str, int], None]
"""Progress callback: a stage (`read` with rows read so far, `replay` with rule sets done)."""


@dataclass(frozen=True)
class Replayed:
    """One rule set's replay, reduced to what a comparison needs."""

    ref: str
    timeline: pd.DataFrame
    persons: int
    exposures: int


@dataclass(frozen=True)
class Backtest:
    """A comparison and what it was made from."""

    comparison: Comparison
    replays: list[Replayed]
    events: int
    """Valid events read (after de-duplication)."""
    malformed: int
    duplicates: int


_SHARED: Inputs | None = None
"""The events read once by the parent; forked replay workers inherit them instead of re-reading."""


def _replay_one(path: str) -> Replayed:
    if _SHARED is None:
        raise RuntimeError("replay worker started without events")
    result = replay(_SHARED, load_rules(Path(path)))
    frame = timeline_frame(change.to_json() for change in result.timeline)
    return Replayed(result.rule_set, frame, sum(result.levels.values()), result.exposures)


def event_period(inputs: Inputs) -> Period:
    """[first event time, last event time + 1 s) of the events read."""
    times = np.concatenate([inputs.ping_ts, np.array([moment for moment, _, _ in inputs.others], dtype=np.int64)])
    if times.size == 0:
        raise EnvironmentProblem("the events file holds no valid event")
    return Period(int(times.min()), int(times.max()) + 1)


def replay_all(inputs: Inputs, rulesets: list[Path], workers: int, advance: Advance | None = None) -> list[Replayed]:
    """Replay every rule set over the same events, `workers` at a time, in the order given.

    With more than one worker the replays run in forked processes that share the events
    read by this one (copy on write) rather than pickling them.
    """
    global _SHARED
    _SHARED = inputs
    try:
        if workers <= 1 or len(rulesets) == 1:
            done = []
            for path in rulesets:
                done.append(_replay_one(str(path)))
                if advance is not None:
                    advance("replay", len(done))
            return done
        context = multiprocessing.get_context("fork")
        results: dict[str, Replayed] = {}
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_replay_one, str(path)): str(path) for path in rulesets}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if advance is not None:
                    advance("replay", len(results))
        return [results[str(path)] for path in rulesets]
    finally:
        _SHARED = None


def read_truth(path: Path) -> pd.DataFrame:
    """The simulator's truth.parquet as a truth frame (exit 2 when it cannot be read)."""
    try:
        return truth_frame(pd.read_parquet(path))
    except (OSError, ValueError) as error:
        raise EnvironmentProblem(f"cannot use the truth {path}: {error}") from None


def truth_period(truth_path: Path) -> Period | None:
    """The simulated run's frame from the city.json beside the truth, if there is one."""
    city = truth_path.parent / "city.json"
    if not city.exists():
        return None
    try:
        document = json.loads(city.read_text())
        return Period(parse_rfc3339(document["start"]), parse_rfc3339(document["end"]))
    except (OSError, ValueError, KeyError) as error:
        raise EnvironmentProblem(f"cannot read the run's period from {city}: {error}") from None


def _labelled(replays: list[Replayed], rulesets: list[Path]) -> dict[str, pd.DataFrame]:
    refs = [r.ref for r in replays]
    # Two files with the same id@version (an edited copy) still need two columns.
    return {
        (r.ref if refs.count(r.ref) == 1 else f"{r.ref} ({path})"): r.timeline for r, path in zip(replays, rulesets)
    }


def backtest_files(
    rulesets: list[Path],
    events: Path,
    truth: Path | None = None,
    period: Period | None = None,
    workers: int = 1,
    examples: int = 5,
    advance: Advance | None = None,
) -> Backtest:
    """Read the events once, replay every rule set over them, and compare (the first is the baseline).

    The period defaults to the simulated run's (city.json beside the truth), else to the
    events' own span.
    """
    for path in rulesets:
        load_rules(path)  # a broken rule set fails now, not after the long read
    try:
        inputs = read_events(events, None if advance is None else lambda rows: advance("read", rows))
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {events}: {error.strerror or error}") from None
    except ValueError as error:  # pyarrow's ArrowInvalid: not a Parquet file, or not the contract's columns
        raise EnvironmentProblem(f"cannot read {events}: {error}") from None
    people = read_truth(truth) if truth is not None else None
    if period is None:
        period = (truth_period(truth) if truth is not None else None) or event_period(inputs)
    replays = replay_all(inputs, rulesets, workers, advance)
    population = None if people is not None else max(r.persons for r in replays)
    comparison = compare(_labelled(replays, rulesets), period, truth=people, population=population, examples=examples)
    return Backtest(comparison, replays, inputs.count, len(inputs.malformed), inputs.duplicates)


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
