"""Benchmark: events simulated and written to Parquet per second, at two city sizes.

For each size it simulates `--days` days with 15-minute pings into a temporary
directory (in a fresh process, so its peak memory is its own), then times the
baseline: writing the same number of pre-made rows (taken from that run's own
output) with the same Parquet writer settings. The ratio says how much of the
cost is simulation and rendering rather than Parquet itself; the growth line
says whether time is linear in residents x days.

    .venv/bin/python -m bench.simulate            # 10,000 and 100,000 residents x 14 days
    .venv/bin/python -m bench.simulate --quick    # 2,000 and 10,000 residents x 2 days
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from simulators.config import SimulationConfig
from simulators.output import CHUNK_ROWS, parquet_writer, write_run
from simulators.run import Simulation


def _simulate(residents: int, days: int, directory: str) -> tuple[float, int, float]:
    """Run in a child process: seconds, events, peak RSS in GB."""
    began = time.perf_counter()
    simulation = Simulation(SimulationConfig(residents=residents, days=days, seed=7))
    write_run(simulation, Path(directory), parquet=True)
    seconds = time.perf_counter() - began
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return seconds, int(simulation.summary()["events_total"]), peak_gb


def _baseline(events_file: Path, rows: int, directory: Path) -> float:
    """Seconds to write `rows` pre-made rows (the run's first row group, repeated)."""
    premade = pq.ParquetFile(events_file).read_row_group(0)
    writer = parquet_writer(directory / "baseline.parquet", premade.schema)
    began = time.perf_counter()
    written = 0
    while written < rows:
        piece = premade.slice(0, min(len(premade), rows - written, CHUNK_ROWS))
        writer.write_table(piece)
        written += len(piece)
    writer.close()
    return time.perf_counter() - began


def measure(residents: int, days: int) -> dict[str, float]:
    """Simulate one size in a child process, then time the baseline in this one."""
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as name:
        directory = Path(name)
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            seconds, events, peak_gb = pool.apply(_simulate, (residents, days, name))
        baseline = _baseline(directory / "events.parquet", events, directory)
        size_gb = (directory / "events.parquet").stat().st_size / 1024**3
    return {
        "residents": residents,
        "days": days,
        "events": events,
        "seconds": seconds,
        "rate": events / seconds,
        "peak_gb": peak_gb,
        "file_gb": size_gb,
        "baseline_rate": events / baseline,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (`argv` as on the command line; `python -m bench` passes its own)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 residents x 2 days")
    parser.add_argument("--days", type=int, default=None, help="days per run (default 14, or 2 with --quick)")
    arguments = parser.parse_args(argv)
    days = arguments.days or (2 if arguments.quick else 14)
    sizes = (2_000, 10_000) if arguments.quick else (10_000, 100_000)

    print(f"simulate -> Parquet, {days} days, 15-minute pings, seed 7")
    print(
        f"{'residents':>10} {'events':>12} {'seconds':>8} {'events/s':>10} {'peak RSS':>9} {'file':>8} {'baseline rows/s':>16} {'ratio':>6}"
    )
    results = []
    for residents in sizes:
        r = measure(residents, days)
        results.append(r)
        print(
            f"{residents:>10,} {r['events']:>12,} {r['seconds']:>8.1f} {r['rate']:>10,.0f} {r['peak_gb']:>7.2f}GB"
            f" {r['file_gb']:>6.2f}GB {r['baseline_rate']:>16,.0f} {r['rate'] / r['baseline_rate']:>6.2f}"
        )
    small, large = results
    scale = large["residents"] / small["residents"]
    print(
        f"growth: {scale:.0f}x residents -> {large['events'] / small['events']:.1f}x events, "
        f"{large['seconds'] / small['seconds']:.1f}x time, {large['peak_gb'] / small['peak_gb']:.1f}x peak memory"
    )
    print(
        "ratio = simulated events/s / baseline rows/s (baseline: writing the same number of "
        "pre-made rows with the same Parquet settings)"
    )


if __name__ == "__main__":
    main()
