"""`healthcode demo`: the end-to-end demo on the embedded broker (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from healthcode.cli.common import err, out
from healthcode.demo import run_demo

_REPO = Path(__file__).resolve().parents[2]


def demo(
    residents: int = typer.Option(800, min=10, help="people in the simulated city"),
    days: int = typer.Option(6, min=1, help="days to simulate"),
    seed: int = typer.Option(7, help="random seed of the city"),
    rules: Path = typer.Option(_REPO / "rules" / "default.yaml", help="rule set to score with"),
    workdir: Path = typer.Option(Path(".healthcode/demo"), help="where the demo writes its files (emptied first)"),
) -> None:
    """Run the end-to-end demo: broker, topics, a simulated city published, dead letters, scoring, signed codes.

    Example: `healthcode demo --residents 2000 --days 7`. Everything it starts is
    stopped at the end, also on Ctrl-C.
    """
    summary = run_demo(workdir, rules, residents, days, seed, lambda line: err.print(f"[dim]demo:[/] {line}"))
    table = Table(title="healthcode demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("residents / infections / cases detected",
         f"{summary.residents:,} / {summary.infections:,} / {summary.cases_detected:,}"),
        ("events published", f"{summary.published:,}"),
        ("messages consumed", f"{summary.consumed:,}"),
        ("dead-lettered", ", ".join(f"{k} {v:,}" for k, v in sorted(summary.dead_lettered.items())) or "none"),
        ("duplicates applied once", f"{summary.duplicates:,}"),
        ("exposures found", f"{summary.exposures:,}"),
        ("level changes", f"{summary.level_changes:,}"),
        ("persons by level at the end", ", ".join(f"{k} {v:,}" for k, v in summary.levels.items())),
        ("codes signed (persons not green)", f"{summary.codes_issued:,}"),
        ("QR verified from image", summary.qr_verdict),
        ("consumed stream agrees with the recorded file", "yes" if summary.replay_agrees else "NO"),
        ("wall time", f"{summary.seconds:.1f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    out.print(table)
    if not summary.replay_agrees:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the top-level `demo` command."""
    app.command("demo")(demo)
