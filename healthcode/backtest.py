"""Backtests of rule sets: read events once, replay every rule set over them, compare.

`backtest_files` is the notebook API (files in, pandas DataFrames out);
`healthcode rules compare` is a thin command over it.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from healthcode.errors import EnvironmentProblem
from healthcode.rulefiles import load_rules
from scoring.compare import Comparison, Period, compare, timeline_frame, truth_frame
from scoring.replay import Inputs, read_events, replay
from scoring.timeutil import parse_rfc3339

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
