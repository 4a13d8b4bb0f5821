"""`healthcode rules compare`: replay rule sets over the same cities and compare them side by side.

The job itself is `healthcode.backtest` (files in, DataFrames out, for notebooks too);
the command adds the cities to simulate, progress bars, the table, the CSV and the HTML report.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

import healthcode
from healthcode.backtest import CitiesBacktest, CitiesPlan, Simulate
from healthcode.cli.common import err, out, shown
from healthcode.cli.rules import rules_app
from healthcode.errors import EnvironmentProblem
from healthcode.jobs import cores
from healthcode.rulefiles import load_rules
from scoring.compare import Period
from scoring.compare_cities import Cities
from scoring.rulewords import diff_rule_sets
from scoring.timeutil import format_rfc3339, parse_rfc3339

if TYPE_CHECKING:
    from simulators.config import SimulationConfig


def compare_command(
    rulesets: list[Path] = typer.Argument(..., help="rule set files; the first is the baseline the others are compared with"),
    events: list[Path] = typer.Option([], "--events", help="events: JSONL (or - for stdin) or .parquet, as `healthcode simulate` writes; repeat for several cities"),
    truth: list[Path] = typer.Option([], "--truth", help="truth.parquet from `healthcode simulate`, one per --events in the same order: adds the backtest metrics"),
    seeds: int = typer.Option(0, "--seeds", min=0, help="also simulate this many cities of --sim-config (seeds --seed, --seed + 1, ...)"),
    sim_config: Optional[Path] = typer.Option(None, "--sim-config", help="simulation settings (YAML, as `healthcode simulate --config`) for --seeds"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="first seed of --seeds (default: the config's)"),
    sim_out: Optional[Path] = typer.Option(None, "--sim-out", help="keep the simulated cities in this directory (default: a temporary one, removed)"),
    report: Optional[Path] = typer.Option(None, "--report", help="write a self-contained HTML report (charts embedded)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="write the metrics as CSV (one city: one column per rule set; several: mean, interval, difference per rule set)"),
    start: Optional[str] = typer.Option(None, "--start", help="period start, RFC 3339 (default: the run's, or the first event)"),
    end: Optional[str] = typer.Option(None, "--end", help="period end, RFC 3339 (default: the run's, or the last event)"),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="jobs at once (simulate a city, replay a rule set over a city, compare a city): default one per core this process may use; fewer when memory is short"),
    examples: int = typer.Option(5, "--examples", min=0, help="example persons shown in the report"),
    confidence: float = typer.Option(0.9, "--confidence", min=0.5, max=0.999, help="confidence of the intervals over several cities"),
) -> None:
    """Replay rule sets over the same cities and compare whom each restricts and whom it misses.

    With `--truth` (from the simulator) it backtests: share of infected persons flagged while infectious and before, infectious hours left green, delay from infection to a flag, restricted person-days of the never infected, precision. Without, it compares level shares and the persons whose level differs, by the reasons behind it. One city is one draw: with several (`--seeds 5 --sim-config simulators/mild-outbreak.yaml`, or several --events/--truth pairs) every metric gets its mean and a 90% interval, and each rule set its difference from the baseline city by city.

    Example: `healthcode rules compare rules/default.yaml rules/points.yaml --seeds 5 --sim-config simulators/mild-outbreak.yaml --report compare.html --csv metrics.csv`
    """
    period = _period_option(start, end)
    if truth and len(truth) != len(events):
        raise typer.BadParameter(f"{len(truth)} truth file(s) for {len(events)} events file(s): give one per events file, in order", param_hint="--truth")
    if seeds and sim_config is None:
        raise typer.BadParameter("--seeds simulates cities of a configuration: give --sim-config", param_hint="--sim-config")
    if sim_config is not None and not seeds:
        raise typer.BadParameter("--sim-config is for --seeds: say how many cities to simulate", param_hint="--seeds")
    if seeds and events and not truth:
        raise typer.BadParameter("simulated cities come with their truth: give a --truth for every --events too", param_hint="--truth")
    if not seeds and not events:
        raise typer.BadParameter("which events? give --events, or --seeds with --sim-config", param_hint="--events")
    rules = [load_rules(path) for path in rulesets]  # a broken rule set fails before anything is simulated or read
    began = time.perf_counter()
    config = _simulation_config(sim_config, seed) if seeds else None
    # The simulated cities live only as long as the run, unless --sim-out keeps them.
    with tempfile.TemporaryDirectory(prefix="healthcode-compare-") as scratch:
        pairs = [(path, truth[index] if truth else None) for index, path in enumerate(events)]
        simulate = None if config is None else Simulate(config, seeds, sim_out if sim_out is not None else Path(scratch))
        plan = CitiesPlan(rulesets, pairs, period, examples, confidence, simulate)
        slots = plan.slots(jobs or cores())
        if slots.reason is not None:
            err.print(f"[yellow]note:[/] {slots.reason}", soft_wrap=True)
        backtest = _run(plan, slots.count, len(rulesets), config)
    pairs = backtest.pairs
    cities = backtest.cities
    seconds = time.perf_counter() - began
    out.print(_metrics_table(cities))
    if len(cities.comparisons) == 1:
        _print_disagreements(cities)
    for name, city in zip(cities.names, backtest.backtests):
        out.print(
            f"{shown(name)}: {city.events:,} events ({city.malformed:,} malformed, {city.duplicates:,} duplicates skipped), "
            f"{city.comparison.population:,} persons, period {format_rfc3339(city.comparison.period.start)} to "
            f"{format_rfc3339(city.comparison.period.end)}"
        )
    count = len(cities.comparisons)
    out.print(f"{count} {'city' if count == 1 else 'cities'}, {len(rulesets)} rule set(s); {seconds:.1f} s")
    if csv is not None:
        table = cities.comparisons[0].metrics if len(cities.comparisons) == 1 else cities.summary.set_index(["metric", "rule_set"])
        _write(csv, lambda path: table.to_csv(path))
        out.print(f"metrics written to {shown(csv)}")
    if report is not None:
        from healthcode.report import render_report

        kept = pairs if sim_out is not None else pairs[: len(events)]
        provenance = {
            "rule sets": "; ".join(f"{r.ref} sha256 {r.content_hash} ({path})" for r, path in zip(rules, rulesets)),
            "tool": f"healthcode {healthcode.__version__}",
            "simulation": _cities_fact(backtest, config, sim_config),
            "events": ", ".join(str(path) for path, _ in kept) or "simulated, not kept (--sim-out keeps them)",
            "truth": ", ".join(str(path) for _, path in kept if path is not None) or _no_truth(pairs),
            "generated": format_rfc3339(int(time.time())),
        }
        diffs = {name: diff_rule_sets(rules[0], rule) for name, rule in zip(cities.rule_sets[1:], rules[1:])}
        html = render_report(cities, "Rule set comparison", provenance, diffs)
        _write(report, lambda path: path.write_text(html, encoding="utf-8"))
        out.print(f"report written to {shown(report)}")


def _run(plan: CitiesPlan, slots: int, rulesets: int, config: SimulationConfig | None) -> CitiesBacktest:
    """Run the backtest's jobs with one bar for the whole run: jobs done of all, and the time left."""
    simulated = f", {config.residents:,} residents x {config.days} days simulated" if config is not None else ""
    what = f"{plan.cities} {'city' if plan.cities == 1 else 'cities'} x {rulesets} rule set(s){simulated}: {len(plan.jobs)} jobs, {slots} at a time"
    # The speed over the whole run, not the last 30 s: jobs end seconds or minutes apart.
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"), TimeElapsedColumn(),
        TextColumn("left"), TimeRemainingColumn(), console=err, speed_estimate_period=24 * 3600,
    )  # fmt: skip
    with bar:
        task = bar.add_task(what, total=len(plan.jobs))
        return plan.run(slots, lambda job: bar.advance(task))


def _simulation_config(path: Path, seed: int | None) -> SimulationConfig:
    from healthcode.simsettings import load_simulation_config

    return load_simulation_config(path, {"seed": seed})


def _cities_fact(backtest: CitiesBacktest, config: SimulationConfig | None, sim_config: Path | None) -> str:
    named = [b.city.describe() for b in backtest.backtests if b.city is not None]
    simulated = f"simulated from {sim_config} ({config.residents:,} residents, {config.days} days); " if config is not None else ""
    return simulated + ("; ".join(named) if named else "not named by the files (recorded events?)")


def _no_truth(pairs: list[tuple[Path, Path | None]]) -> str:
    return "none (level comparison only)" if pairs[0][1] is None else "simulated, not kept (--sim-out keeps them)"


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


def _metrics_table(cities: Cities) -> Table:
    """The report's metrics table for the terminal: one city's figures, or several cities' means and intervals."""
    from healthcode.report import metric_cells, metric_columns, metrics_title

    table = Table(title=shown(metrics_title(cities)))
    table.add_column("metric")
    table.add_column("unit", style="dim")
    for column in metric_columns(cities):
        table.add_column(shown(column), justify="right")
    for label, unit, cells in metric_cells(cities):
        table.add_row(shown(label), unit, *(shown(f"{figure} {of}".strip()) for figure, of in cells))
    return table


def _print_disagreements(cities: Cities, shown_rows: int = 5) -> None:
    comparison = cities.comparisons[0]
    for name, rows in comparison.disagreements.groupby("rule_set", sort=False):
        out.print(f"[bold]{shown(name)}[/] differs from [bold]{shown(comparison.baseline)}[/] most often as:")
        for row in rows.head(shown_rows).itertuples():
            out.print(
                f"  {row.baseline_level} ({shown(row.baseline_reasons)}) -> {row.level} ({shown(row.reasons)}): "
                f"{row.persons:,} persons, {row.person_hours:,.0f} person-hours"
            )


def register(app: typer.Typer) -> None:
    """Add `compare` to the `rules` group (once, however often the CLI is assembled)."""
    if not any(command.name == "compare" for command in rules_app.registered_commands):
        rules_app.command("compare")(compare_command)
