"""Scoring: per-person assessment rate, and batch rescoring of 1,000,000 persons against the
per-person loop (the loop is timed on a subsample in the same run and extrapolated).

Goal: rescoring 1M persons in under 5 s on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from scoring.assess import assess
from scoring.batch import pack_states, rescore_packed
from scoring.rules import LEVEL_CODE, LEVELS, load_rule_set
from scoring.synthetic import synthetic_states

RULES = Path(__file__).resolve().parents[1] / "rules"
AT = 1_650_000_000


def loop_rate(states: list, rules, at: int) -> tuple[float, list[int]]:
    """Persons per second of `assess` one by one (best of two passes), and their level codes."""
    best, levels = float("inf"), []
    for _ in range(2):
        start = time.perf_counter()
        levels = [LEVEL_CODE[assess(state, rules, at).level] for state in states]
        best = min(best, time.perf_counter() - start)
    return len(states) / best, levels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k persons instead of 1M")
    parser.add_argument("--persons", type=int, default=None, help="population size (default 1,000,000)")
    args = parser.parse_args(argv)
    count = args.persons or (100_000 if args.quick else 1_000_000)
    sample = min(count, 20_000 if args.quick else 100_000)

    start = time.perf_counter()
    states = synthetic_states(count, AT)
    print(f"persons: {count:,} (synthetic outbreak city, built in {time.perf_counter() - start:.1f} s)")
    with_facts = sum(1 for state in states if state.has_facts())
    print(f"persons with tests, visits or exposures: {with_facts:,} ({with_facts / count:.0%})")

    for name in ("default", "points"):
        rules = load_rule_set(RULES / f"{name}.yaml")
        per_second, expected = loop_rate(states[:sample], rules, AT)
        start = time.perf_counter()
        packed = pack_states(states)
        packed_at = time.perf_counter()
        levels = rescore_packed(packed, rules, AT)
        done = time.perf_counter()
        batch_total = done - start
        loop_total = count / per_second
        assert levels[:sample].tolist() == expected, "batch levels differ from per-person levels"
        shares = np.bincount(levels, minlength=len(LEVELS)) / count
        print(f"\n[{rules.ref}] levels: " + ", ".join(f"{lvl} {share:.1%}" for lvl, share in zip(LEVELS, shares)))
        print(f"per-person assess (baseline, {sample:,} persons): {per_second:,.0f} persons/s")
        print(f"per-person loop for {count:,} (extrapolated): {loop_total:.2f} s")
        print(
            f"batch rescore of {count:,}: {batch_total:.2f} s "
            f"(pack {packed_at - start:.2f} s + evaluate {done - packed_at:.2f} s), {count / batch_total:,.0f} persons/s"
        )
        print(f"re-evaluate packed states only: {done - packed_at:.3f} s")
        print(f"ratio batch / per-person loop: {loop_total / batch_total:.1f}x faster; goal < 5 s: {'met' if batch_total < 5 else 'NOT met'}")
        print(f"batch levels equal per-person levels on the {sample:,} subsample: yes")


if __name__ == "__main__":
    main()
