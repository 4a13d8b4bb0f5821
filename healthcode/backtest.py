"""Backtests of rule sets: read events once, replay every rule set over them, compare.

`backtest_files` is the notebook API for one city (files in, pandas DataFrames out),
`backtest_cities` for several (one city is one draw: means and intervals across them),
`simulate_cities` makes those cities; `healthcode rules compare` is a thin command over them.

A truth is only used with the events of its own city: the simulator names the city in
every file (Parquet metadata, or city.json beside a JSONL file), and a truth of another
city, or of a shorter run, is refused (`scoring.compare_match`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pandas as pd
import pyarrow.parquet as pq

from healthcode.errors import EnvironmentProblem
from healthcode.rulefiles import load_rules
from scoring.compare import Comparison, Period, compare, timeline_frame, truth_frame
from scoring.compare_cities import CONFIDENCE, Cities, across_cities
from scoring.compare_match import CityIdentity, city_mismatch, truth_mismatch
from scoring.replay import Inputs, read_events, replay

if TYPE_CHECKING:
    from simulators.config import SimulationConfig

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
    city: CityIdentity | None = None
    """The simulated city the events (and truth) came from, when the files name it."""


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
    span = inputs.span()
    if span is None:
        raise EnvironmentProblem("the events file holds no valid event")
    return Period(span[0], span[1] + 1)


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


def city_of(path: Path) -> CityIdentity | None:
    """The simulated city a file names: a Parquet file in its metadata, any other in the city.json beside it.

    None for files that name none (recorded events, older runs); exit 2 for a name that cannot be read.
    """
    from simulators.output import CITY, RUN_METADATA_KEY  # the simulator's modules cost a second to import

    try:
        if path.suffix == ".parquet":
            named = (pq.read_schema(path).metadata or {}).get(RUN_METADATA_KEY)
        else:
            city = path.parent / CITY
            named = city.read_bytes() if str(path) != "-" and city.exists() else None
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # pyarrow's ArrowInvalid: not a Parquet file
        raise EnvironmentProblem(f"cannot read {path}: {error}") from None
    if named is None:
        return None
    try:
        document = orjson.loads(named)
        if path.suffix != ".parquet":  # city.json: the name is one part of it
            document = document.get("run") if isinstance(document, dict) else None
        return None if document is None else CityIdentity.from_mapping(document)
    except (ValueError, AttributeError, TypeError) as error:  # orjson's JSONDecodeError is a ValueError
        raise EnvironmentProblem(f"cannot read which city {path} is from: {error}") from None


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

    The period defaults to the simulated run's (as the files name it), else to the
    events' own span. A truth of another city or a shorter run is refused (exit 2).
    """
    for path in rulesets:
        load_rules(path)  # a broken rule set fails now, not after the long read
    events_city = city_of(events)
    truth_city = city_of(truth) if truth is not None else None
    people = read_truth(truth) if truth is not None else None  # a truth that cannot be used fails before the read too
    named = city_mismatch(events_city, truth_city)  # told from the names alone, before the long read
    if named is not None:
        raise _unusable(truth, events, named)
    try:
        inputs = read_events(events, None if advance is None else lambda rows: advance("read", rows))
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {events}: {error.strerror or error}") from None
    except ValueError as error:  # pyarrow's ArrowInvalid: not a Parquet file, or not the contract's columns
        raise EnvironmentProblem(f"cannot read {events}: {error}") from None
    span = event_period(inputs)
    if people is not None:
        reason = truth_mismatch(events_city, truth_city, inputs.persons(), people["person"].tolist(), span, period)
        if reason is not None:
            raise _unusable(truth, events, reason)
    city = truth_city or events_city
    if period is None:
        period = city.period if city is not None else span
    replays = replay_all(inputs, rulesets, workers, advance)
    population = None if people is not None else max(r.persons for r in replays)
    comparison = compare(_labelled(replays, rulesets), period, truth=people, population=population, examples=examples)
    return Backtest(comparison, replays, inputs.count, len(inputs.malformed), inputs.duplicates, city)


def _unusable(truth: Path | None, events: Path, reason: str) -> EnvironmentProblem:
    return EnvironmentProblem(f"cannot use the truth {truth} with the events {events}: {reason}")


@dataclass(frozen=True)
class CitiesBacktest:
    """Backtests of the same rule sets on several cities and their summary."""

    cities: Cities
    backtests: list[Backtest]


CityAdvance = Callable[[int, str, int], None]
"""Progress over cities: (city index, stage, done) with the stages of `Advance`."""


def backtest_cities(
    rulesets: list[Path],
    pairs: Sequence[tuple[Path, Path | None]],
    period: Period | None = None,
    workers: int = 1,
    examples: int = 5,
    advance: CityAdvance | None = None,
    confidence: float = CONFIDENCE,
) -> CitiesBacktest:
    """`backtest_files` on every (events, truth) pair, then each metric's mean and interval across them.

    The same city twice would narrow the intervals with a copy, so it is refused (exit 2).
    """
    if not pairs:
        raise EnvironmentProblem("a comparison needs at least one city's events")
    if len({truth is None for _, truth in pairs}) > 1:
        raise EnvironmentProblem("give a truth for every city's events, or for none")
    told = [city_of(events) for events, _ in pairs]  # before any replay: a twin is refused at once
    twins = {city for city in told if city is not None and told.count(city) > 1}
    if twins:
        raise EnvironmentProblem(f"the same city twice ({twins.pop().describe()}): one city counted twice is not two draws")
    backtests = []
    for index, (events, truth) in enumerate(pairs):
        step = None if advance is None else (lambda stage, done, index=index: advance(index, stage, done))
        backtests.append(backtest_files(rulesets, events, truth, period, workers, examples, step))
    named = [backtest.city for backtest in backtests]
    names = _city_names(named, [events for events, _ in pairs])
    try:
        summary = across_cities([backtest.comparison for backtest in backtests], names, confidence)
    except ValueError as error:
        raise EnvironmentProblem(f"cannot put the cities side by side: {error}") from None
    return CitiesBacktest(summary, backtests)


def _city_names(cities: list[CityIdentity | None], events: list[Path]) -> list[str]:
    """`seed 7` when every city is named by a seed of its own, else the events files, else numbers."""
    seeds = [city.seed if city is not None else None for city in cities]
    if None not in seeds and len(set(seeds)) == len(seeds):
        return [f"seed {seed}" for seed in seeds]
    paths = [str(path) for path in events]
    if len(set(paths)) == len(paths):
        return paths
    return [f"city {number}" for number in range(1, len(events) + 1)]


def simulate_cities(
    config: SimulationConfig, count: int, directory: Path, done: Callable[[int], None] | None = None
) -> list[tuple[Path, Path]]:
    """Simulate `count` cities of `config` with seeds config.seed, config.seed + 1, ... into `directory`.

    Returns their (events, truth) files. Events are Parquet (faster to read) unless the
    config asks for broken lines, which only JSON lines can carry.
    """
    from simulators.config import ORDER_FAULTS
    from simulators.output import TRUTH, write_run
    from simulators.run import Simulation

    parquet = not (config.faults.share and set(config.faults.kinds) - set(ORDER_FAULTS))
    pairs = []
    for index in range(count):
        city = config.model_copy(update={"seed": config.seed + index})
        where = directory / f"seed-{city.seed}"
        try:
            events = write_run(Simulation(city), where, parquet=parquet)
        except OSError as error:
            raise EnvironmentProblem(f"cannot write the simulated city to {where}: {error.strerror or error}") from None
        pairs.append((events, where / TRUTH))
        if done is not None:
            done(index + 1)
    return pairs
