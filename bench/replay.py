"""Replay throughput from JSONL and from Parquet, against a parse-only baseline of the same file.

The file is a simulated city (`simulators`), written both ways. For each format the
run measures: parse only (orjson per line / pyarrow reading the table), reading into
validated inputs (`read_events`), and the whole core (`replay` after reading).
Goals: at least 300,000 events/s from Parquet, and the whole core no slower than 3x
parsing alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from scoring.replay import read_events, replay
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation

RULES = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


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


def measure(path: Path, parse) -> None:  # type: ignore[no-untyped-def]
    rules = load_rule_set(RULES)
    rows, parse_s = _timed(lambda: parse(path))
    inputs, read_s = _timed(lambda: read_events(path))
    result, score_s = _timed(lambda: replay(inputs, rules))
    total = read_s + score_s
    print(f"  events: {rows:,}; level changes: {len(result.timeline):,}; exposures: {result.exposures:,}")
    print(f"  parse only (baseline):      {rows / parse_s:>12,.0f} events/s  ({parse_s:.2f} s)")
    print(f"  read + validate:            {rows / read_s:>12,.0f} events/s  ({read_s:.2f} s)")
    print(f"  scoring core after reading: {rows / score_s:>12,.0f} events/s  ({score_s:.2f} s)")
    print(f"  whole replay:               {rows / total:>12,.0f} events/s  ({total:.2f} s)")
    print(f"  ratio whole replay time / parse-only time: {total / parse_s:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 residents x 3 days instead of 5,000 x 7")
    args = parser.parse_args(argv)
    residents, days = (1_000, 3) if args.quick else (5_000, 7)
    config = SimulationConfig(residents=residents, days=days, seed=11)
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        jsonl = write_run(Simulation(config), base / "jsonl")
        parquet = write_run(Simulation(config), base / "parquet", parquet=True)
        print(f"simulated city: {residents:,} residents x {days} days")
        print("from Parquet:")
        measure(parquet, _parse_parquet)
        print("from JSONL:")
        measure(jsonl, _parse_jsonl)


if __name__ == "__main__":
    main()
