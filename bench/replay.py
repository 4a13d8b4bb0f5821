"""Replay throughput from JSONL and from Parquet, against a parse-only baseline of the same file.

The file is a simulated city (`simulators`), written both ways. For each format the
run measures: parse only (orjson per line / pyarrow reading the table), reading into
validated inputs (`read_events`), and the whole core (`replay` after reading).
Goals: at least 300,000 events/s from Parquet, and the whole core no slower than 3x
parsing alone.

That city has almost no exposures, so two cities with an epidemic follow (Parquet
only): the README's `simulators/mild-outbreak.yaml` and the simulator's defaults
(which infect a tenth of the city in 20 days, most of it at the end), 4,000 residents
x 20 days (a few minutes in all; `--outbreak` runs only them). Exposure records and
case look-ups, not pings alone, are their cost. Each city is replayed in a process of
its own so that its peak memory (max RSS) is its own (the parse-only baseline, which
holds the whole table, runs in another); a table at the end sets the cities side by side. CPU seconds are the figure to compare on a shared machine.
Each city is also replayed with its pings snapped a batch ahead in a helper process, as
`healthcode replay --snap-ahead` runs (`healthcode.snapahead`): the same timeline, in
less wall time only when a second physical core is free.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import resource
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from healthcode.collector import tune_for_scoring
from healthcode.simsettings import load_simulation_config
from healthcode.snapahead import SnapAhead
from scoring.eventfile import read_events
from scoring.replay import level_changes, replay
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "default.yaml"
MILD = ROOT / "simulators" / "mild-outbreak.yaml"
OUTBREAKS = {"mild-outbreak.yaml": MILD, "defaults": None}
"""The outbreak cities: the README's mild config and the simulator's defaults."""


@dataclass(frozen=True)
class Measured:
    """One city's figures."""

    city: str
    events: int
    parse_s: float
    total_s: float
    cpu_s: float
    peak_mb: float
    ahead_s: float
    """Whole replay with the pings snapped a batch ahead in a helper process (`healthcode replay --snap-ahead`)."""


def _timed(work):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


def _parse_jsonl(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return count


def _parse_parquet(path: Path) -> int:
    return pq.read_table(path).num_rows


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(path: Path, parse, city: str = "", parsed: tuple[int, float] | None = None) -> Measured:  # type: ignore[no-untyped-def]
    """`parsed`: (rows, seconds) of the parse-only baseline, when measured elsewhere."""
    tune_for_scoring()  # as the `healthcode` command does
    rules = load_rule_set(RULES)
    rows, parse_s = parsed if parsed is not None else _timed(lambda: parse(path))
    cpu = time.process_time()
    inputs, read_s = _timed(lambda: read_events(path))
    result, score_s = _timed(lambda: replay(inputs, rules))
    cpu = time.process_time() - cpu
    total = read_s + score_s
    with SnapAhead() as snap_ahead:  # the helper starts with the first batch, on the clock as in the CLI
        ahead, ahead_s = _timed(lambda: replay(inputs, rules, None, snap_ahead))
    if ahead.timeline != result.timeline:
        raise AssertionError("the replay snapped ahead found another timeline")
    print(f"  events: {rows:,}; level changes: {len(level_changes(result.timeline)):,} "
          f"(timeline lines: {len(result.timeline):,}); exposures: {result.exposures:,}")
    print(f"  parse only (baseline):      {rows / parse_s:>12,.0f} events/s  ({parse_s:.2f} s)")
    print(f"  read + validate:            {rows / read_s:>12,.0f} events/s  ({read_s:.2f} s)")
    print(f"  scoring core after reading: {rows / score_s:>12,.0f} events/s  ({score_s:.2f} s)")
    print(f"  whole replay:               {rows / total:>12,.0f} events/s  ({total:.2f} s; {cpu:.2f} s of CPU)")
    print(f"  ratio whole replay time / parse-only time: {total / parse_s:.2f}")
    print(f"  scoring snapped ahead:      {rows / ahead_s:>12,.0f} events/s  ({ahead_s:.2f} s, the same timeline; "
          f"whole replay {read_s + ahead_s:.2f} s, {(read_s + ahead_s) / parse_s:.2f}x parse-only)")
    print(f"  peak memory of this process so far: {_peak_mb():,.0f} MB")
    return Measured(city, rows, parse_s, total, cpu, _peak_mb(), read_s + ahead_s)


def _parse_timed(path: Path) -> tuple[int, float]:
    return _timed(lambda: _parse_parquet(path))


def _measure_alone(path: Path, city: str) -> Measured:
    # Fresh processes: max RSS is then this city's replay's peak, not an earlier one's, nor the
    # parse-only baseline's (which holds the whole table).
    # Executors, not `Pool`s: a pool's processes are daemons, which may not start the snapping helper.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        parsed = pool.submit(_parse_timed, path).result()
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(measure, path, _parse_parquet, city, parsed).result()


def outbreaks(residents: int, days: int, base: Path) -> list[Measured]:
    """Simulate and replay each outbreak city at `residents` x `days` (seed 7)."""
    measured = []
    for name, config_file in OUTBREAKS.items():
        config = load_simulation_config(config_file, {"residents": residents, "days": days, "seed": 7})
        parquet = write_run(Simulation(config), base / name, parquet=True)
        city = f"{name} {residents:,} x {days} d"
        print(f"outbreak city ({city}), from Parquet:")
        measured.append(_measure_alone(parquet, city))
    return measured


def table(measured: list[Measured]) -> None:
    """The cities side by side: whole replay (read + score) against parse-only of the same file."""
    print(f"\n{'city (Parquet, rules/default.yaml)':<36}{'events':>12}{'events/s':>10}{'per CPU s':>11}"
          f"{'CPU s':>8}{'peak MB':>9}{'x parse-only':>14}{'ahead s':>9}{'ahead x':>9}")
    for m in measured:
        print(f"{m.city:<36}{m.events:>12,}{m.events / m.total_s:>10,.0f}{m.events / m.cpu_s:>11,.0f}"
              f"{m.cpu_s:>8.1f}{m.peak_mb:>9,.0f}{m.total_s / m.parse_s:>14.1f}"
              f"{m.ahead_s:>9.1f}{m.ahead_s / m.parse_s:>9.1f}")
    print("ahead: the whole replay (wall) with pings snapped a batch ahead in a helper process (`healthcode replay --snap-ahead`)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true",
        help="1,000 residents x 3 days instead of 5,000 x 7, outbreak cities 2,000 x 10 instead of 4,000 x 20",
    )
    parser.add_argument("--outbreak", action="store_true", help="only the outbreak cities")
    args = parser.parse_args(argv)
    measured = []
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        if not args.outbreak:
            residents, days = (1_000, 3) if args.quick else (5_000, 7)
            config = SimulationConfig(residents=residents, days=days, seed=11)
            jsonl = write_run(Simulation(config), base / "jsonl")
            parquet = write_run(Simulation(config), base / "parquet", parquet=True)
            print(f"simulated city: {residents:,} residents x {days} days")
            print("from Parquet:")
            measured.append(measure(parquet, _parse_parquet, f"few exposures {residents:,} x {days} d"))
            print("from JSONL:")
            measure(jsonl, _parse_jsonl)
        measured += outbreaks(*((2_000, 10) if args.quick else (4_000, 20)), base)
    table(measured)


if __name__ == "__main__":
    main()
