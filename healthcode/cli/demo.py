"""`healthcode demo`: the end-to-end demo on the embedded broker (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from healthcode.cli.common import err, out, shown
from healthcode.demo import run_demo

_REPO = Path(__file__).resolve().parents[2]


def demo(
    residents: int = typer.Option(600, min=10, help="people in the simulated city"),
    days: int = typer.Option(5, min=1, help="days to simulate"),
    seed: int = typer.Option(7, help="random seed of the city"),
    rules: Path = typer.Option(_REPO / "rules" / "default.yaml", help="rule set the workers start with"),
    switch_to: Path = typer.Option(_REPO / "rules" / "points.yaml", help="rule set published half way"),
    workdir: Path = typer.Option(Path(".healthcode/demo"), help="where the demo writes its files (emptied first)"),
) -> None:
    """Run the end-to-end demo: broker, two workers, a simulated city, a live rule change, signed codes.

    Example: `healthcode demo --residents 2000 --days 7`. Everything it starts is
    stopped at the end, also on Ctrl-C. Exit 1 if the published timeline does not
    equal replay of the same events.
    """
    summary = run_demo(
        workdir, rules, switch_to, residents, days, seed, lambda line: err.print(f"[dim]demo:[/] {shown(line)}")
    )
    table = Table(title="healthcode demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("residents / infections / cases detected",
         f"{summary.residents:,} / {summary.infections:,} / {summary.cases_detected:,}"),
        ("events published (with 0.5% faults)", f"{summary.published:,}"),
        ("dead-lettered", ", ".join(f"{k} {v:,}" for k, v in sorted(summary.dead_lettered.items())) or "none"),
        ("live rule change", summary.rule_change),
        ("persons whose level changed at the switch", f"{summary.changed_at_switch:,}"),
        ("codes published by level", ", ".join(f"{k} {v:,}" for k, v in sorted(summary.codes_by_level.items()))),
        ("a resident's own code, verified", summary.resident_verdict),
        ("QR scanned and verified offline", summary.qr_verdict),
        ("published timeline equals replay", "yes" if summary.replay_agrees else "NO"),
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
