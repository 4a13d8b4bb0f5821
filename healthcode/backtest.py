"""Backtests of rule sets: replay every rule set over every city, compare, and summarise across cities.

`backtest_files` is the notebook API for one city (files in, pandas DataFrames out),
`backtest_cities` for several (one city is one draw: means and intervals across them),
optionally simulating them first; `healthcode rules compare` is a thin command over them.

The work is a pool of jobs (`healthcode.jobs`): simulate a city, replay one rule set over
one city, compare one city's replays. Each job's peak memory is estimated from its size
(figures measured below) so that the pool runs no more at once than the machine holds.
Results do not depend on how many run at once: every job is deterministic and the
results are put together in the order given.

A truth is only used with the events of its own city: the simulator names the city in
every file (Parquet metadata, or city.json beside a JSONL file), and a truth of another
city, or of a shorter run, is refused (`scoring.compare_match`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pandas as pd
import pyarrow.parquet as pq

from healthcode.errors import EnvironmentProblem
from healthcode.jobs import Job, Key, Results, Slots, available_memory, job_slots, run_jobs
from healthcode.rulefiles import load_rules
from scoring.compare import Comparison, Period, compare, timeline_frame, truth_frame
from scoring.compare_cities import CONFIDENCE, Cities, across_cities
from scoring.compare_match import CityIdentity, city_mismatch, truth_mismatch
from scoring.eventfile import Inputs, input_size, read_events
from scoring.replay import replay

if TYPE_CHECKING:
    from simulators.config import SimulationConfig

# Peak memory (max RSS) of one job's process, measured on mild-outbreak cities: a replay's
# peak is its read (Parquet into columns) and grows with the events, 506 MB at 0.87 M events,
# 637-674 MB at 1.75 M, 1,015 MB at 3.49 M, 3.94 GB at 26.2 M (the bench); a simulation's grows
# with the residents (241 MB at 1,000, 279 MB at 2,000, whatever the days); a comparison's
# is its level timelines, small beside the events (48 and 57 MB above its fork at 0.87 M and
# 3.49 M events). The estimates below lie above every one of those.
PROCESS_BYTES = 400_000_000
"""A job's process before its own data: the interpreter, numpy, pandas, pyarrow (about 190 MB), with room."""
REPLAY_BYTES_PER_EVENT = 200
SIMULATION_BYTES_PER_RESIDENT = 50_000
COMPARE_BYTES_PER_EVENT = 20
JSONL_BYTES_PER_EVENT = 100
"""Fewer than an event's line has (a simulated city's shortest is 133 bytes): a JSONL file's size over this is more events than it holds."""


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


def event_period(inputs: Inputs, events: Path) -> Period:
    """[first event time, last event time + 1 s) of the events read from `events`."""
    span = inputs.span()
    if span is None:
        raise EnvironmentProblem(f"{events} holds no valid event")
    return Period(span[0], span[1] + 1)


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


@dataclass(frozen=True)
class Named:
    """What a city's files say before its events are read: the cities they name, and the truth."""

    events: CityIdentity | None
    truth: CityIdentity | None
    people: pd.DataFrame | None


def named(events: Path, truth: Path | None) -> Named:
    """The cities `events` and `truth` name, and the truth read; exit 2 when they name different cities."""
    events_city = city_of(events)
    truth_city = city_of(truth) if truth is not None else None
    people = read_truth(truth) if truth is not None else None
    reason = city_mismatch(events_city, truth_city)
    if reason is not None:
        raise _unusable(truth, events, reason)
    return Named(events_city, truth_city, people)


def _unusable(truth: Path | None, events: Path, reason: str) -> EnvironmentProblem:
    return EnvironmentProblem(f"cannot use the truth {truth} with the events {events}: {reason}")


@dataclass(frozen=True)
class CityReplay:
    """One rule set replayed over one city, and what its events were."""

    replayed: Replayed
    events: int
    malformed: int
    duplicates: int
    span: Period
    city: CityIdentity | None


_last_read: tuple[Path, Inputs] | None = None
"""The city read last in this process: run one at a time, its next rule set replays without reading it again."""


def _read(events: Path) -> Inputs:
    global _last_read
    if _last_read is not None and _last_read[0] == events:
        return _last_read[1]
    _last_read = None  # let the last city go before reading the next
    try:
        inputs = read_events(events)
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {events}: {error.strerror or error}") from None
    except ValueError as error:  # pyarrow's ArrowInvalid: not a Parquet file, or not the contract's columns
        raise EnvironmentProblem(f"cannot read {events}: {error}") from None
    _last_read = (events, inputs)
    return inputs


def replay_city(ruleset: Path, events: Path, truth: Path | None, period: Period | None) -> CityReplay:
    """Replay one rule set over one city's events, after checking that the truth is the events' own."""
    files = named(events, truth)
    inputs = _read(events)
    span = event_period(inputs, events)
    if files.people is not None:
        reason = truth_mismatch(files.events, files.truth, inputs.persons(), files.people["person"].tolist(), span, period)
        if reason is not None:
            raise _unusable(truth, events, reason)
    result = replay(inputs, load_rules(ruleset))
    frame = timeline_frame(change.to_json() for change in result.timeline)
    replayed = Replayed(result.rule_set, frame, sum(result.levels.values()), result.exposures)
    return CityReplay(replayed, inputs.count, len(inputs.malformed), inputs.duplicates, span, files.truth or files.events)


def compare_city(
    rulesets: list[Path], replays: list[CityReplay], truth: Path | None, period: Period | None, examples: int
) -> Backtest:
    """One city's comparison of its replays (the first rule set is the baseline).

    The period defaults to the simulated run's (as the files name it), else to the events' own span.
    """
    first = replays[0]
    people = read_truth(truth) if truth is not None else None
    if period is None:
        period = first.city.period if first.city is not None else first.span
    done = [city.replayed for city in replays]
    population = None if people is not None else max(r.persons for r in done)
    comparison = compare(_labelled(done, rulesets), period, truth=people, population=population, examples=examples)
    return Backtest(comparison, done, first.events, first.malformed, first.duplicates, first.city)


def _labelled(replays: list[Replayed], rulesets: list[Path]) -> dict[str, pd.DataFrame]:
    refs = [r.ref for r in replays]
    # Two files with the same id@version (an edited copy) still need two columns.
    return {
        (r.ref if refs.count(r.ref) == 1 else f"{r.ref} ({path})"): r.timeline for r, path in zip(replays, rulesets)
    }


def replay_peak(events: int) -> int:
    """Estimated peak memory of a replay of `events` events."""
    return PROCESS_BYTES + REPLAY_BYTES_PER_EVENT * events


def compare_peak(events: int) -> int:
    """Estimated peak memory of comparing the replays of a city of `events` events."""
    return PROCESS_BYTES + COMPARE_BYTES_PER_EVENT * events


def simulation_peak(residents: int) -> int:
    """Estimated peak memory of simulating a city of `residents`."""
    return PROCESS_BYTES + SIMULATION_BYTES_PER_RESIDENT * residents


def simulated_events(config: SimulationConfig) -> int:
    """More events than a city of `config` has: a ping per resident per interval, and a tenth more."""
    return int(config.residents * config.days * (1440 // config.mobility.ping_interval_minutes) * 1.1)


def file_events(events: Path) -> int:
    """More events than the file holds: its rows, or its bytes over `JSONL_BYTES_PER_EVENT` (0 when unknown)."""
    try:
        size = input_size(events) or 0
    except (OSError, ValueError):
        return 0  # reading it tells what is wrong
    return size if events.suffix == ".parquet" else size // JSONL_BYTES_PER_EVENT


@dataclass(frozen=True)
class Simulate:
    """Cities to simulate before the backtest: `count` of `config`, seeds config.seed, config.seed + 1, ..."""

    config: SimulationConfig
    count: int
    directory: Path
    """Each city goes to `directory`/seed-N/."""


@dataclass(frozen=True)
class CitiesBacktest:
    """Backtests of the same rule sets on several cities and their summary."""

    cities: Cities
    backtests: list[Backtest]
    pairs: list[tuple[Path, Path | None]]
    """Each city's (events, truth) files, simulated ones included."""


Pair = tuple[Path, Path | None]


class CitiesPlan:
    """The jobs of a backtest of `rulesets` on several cities, to run with `run`.

    Every given city's files are checked on creation (names, truth, twins), before any job.
    """

    def __init__(
        self,
        rulesets: list[Path],
        pairs: Sequence[Pair],
        period: Period | None = None,
        examples: int = 5,
        confidence: float = CONFIDENCE,
        simulate: Simulate | None = None,
    ) -> None:
        if not pairs and simulate is None:
            raise EnvironmentProblem("a comparison needs at least one city's events")
        if len({truth is None for _, truth in pairs}) > 1:
            raise EnvironmentProblem("give a truth for every city's events, or for none")
        for path in rulesets:
            load_rules(path)  # a broken rule set fails now, not after the long read
        _refuse_twins([named(events, truth).events for events, truth in pairs])  # before any job
        self.rulesets = rulesets
        self.given = list(pairs)
        self.stdin: Path | None = None
        self.period = period
        self.confidence = confidence
        self.cities = len(pairs) + (simulate.count if simulate is not None else 0)
        self.jobs: list[Job] = []
        for index, (events, truth) in enumerate(pairs):
            pair = (self._spooled(events), truth)
            self._city(index, lambda done, pair=pair: pair, file_events(pair[0]), None, examples)
        if simulate is not None:
            residents, events = simulate.config.residents, simulated_events(simulate.config)
            for number in range(simulate.count):
                index = len(pairs) + number
                self.jobs.append(
                    Job(("simulate", index), lambda done, number=number: simulate_city(simulate, number), simulation_peak(residents),
                        what=f"simulate seed {simulate.config.seed + number}")  # fmt: skip
                )
                self._city(index, lambda done, index=index: done[("simulate", index)], events, ("simulate", index), examples)

    def _city(self, index: int, files: Callable[[Results], Pair], events: int, after: Key | None, examples: int) -> None:
        """The jobs of one city: a replay per rule set (after `after`), then their comparison."""
        needs = () if after is None else (after,)
        replays = []
        for number, ruleset in enumerate(self.rulesets):
            key = ("replay", index, number)
            replays.append(key)
            self.jobs.append(
                Job(key, lambda done, ruleset=ruleset: replay_city(ruleset, *files(done), self.period), replay_peak(events), needs,
                    what=f"replay {ruleset.name} on city {index + 1}")  # fmt: skip
            )
        self.jobs.append(
            Job(("compare", index),
                lambda done: compare_city(self.rulesets, [done[key] for key in replays], files(done)[1], self.period, examples),
                compare_peak(events), (*needs, *replays), what=f"compare city {index + 1}")  # fmt: skip
        )

    def _spooled(self, events: Path) -> Path:
        """Events from stdin (`-`) go to a file first: each replay reads its city on its own."""
        if str(events) != "-":
            return events
        if self.stdin is None:
            descriptor, name = tempfile.mkstemp(prefix="healthcode-stdin-", suffix=".jsonl")
            with os.fdopen(descriptor, "wb") as sink:
                shutil.copyfileobj(sys.stdin.buffer, sink)
            self.stdin = Path(name)
        return self.stdin

    def slots(self, requested: int, available: int | None = None) -> Slots:
        """How many of the jobs to run at once for `requested` (see `job_slots`)."""
        return job_slots(requested, [job.peak for job in self.jobs], available_memory() if available is None else available)

    def run(self, slots: int, finished: Callable[[Job], None] | None = None) -> CitiesBacktest:
        """Run the jobs, `slots` at a time, then put the cities side by side."""
        global _last_read
        try:
            done = run_jobs(self.jobs, slots, finished)
        finally:
            _last_read = None  # a notebook keeps the results, not the last city's events
            if self.stdin is not None:
                self.stdin.unlink(missing_ok=True)
        backtests: list[Backtest] = [done[("compare", index)] for index in range(self.cities)]
        pairs = self.given + [done[("simulate", index)] for index in range(len(self.given), self.cities)]
        _refuse_twins([backtest.city for backtest in backtests])  # a given city may be one simulated here
        names = _city_names([backtest.city for backtest in backtests], [events for events, _ in pairs])
        try:
            summary = across_cities([backtest.comparison for backtest in backtests], names, self.confidence)
        except ValueError as error:
            raise EnvironmentProblem(f"cannot put the cities side by side: {error}") from None
        return CitiesBacktest(summary, backtests, pairs)


def _refuse_twins(cities: list[CityIdentity | None]) -> None:
    """The same city twice would narrow the intervals with a copy: refused (exit 2)."""
    twins = {city for city in cities if city is not None and cities.count(city) > 1}
    if twins:
        raise EnvironmentProblem(f"the same city twice ({twins.pop().describe()}): one city counted twice is not two draws")


def backtest_cities(
    rulesets: list[Path],
    pairs: Sequence[Pair],
    period: Period | None = None,
    jobs: int = 1,
    examples: int = 5,
    confidence: float = CONFIDENCE,
    simulate: Simulate | None = None,
) -> CitiesBacktest:
    """Replay every rule set over every (events, truth) pair (and simulated city), `jobs` at a time
    (fewer if memory is short), then each metric's mean and interval across the cities."""
    plan = CitiesPlan(rulesets, pairs, period, examples, confidence, simulate)
    return plan.run(plan.slots(jobs).count)


def backtest_files(
    rulesets: list[Path],
    events: Path,
    truth: Path | None = None,
    period: Period | None = None,
    jobs: int = 1,
    examples: int = 5,
) -> Backtest:
    """Replay every rule set over one city's events and compare (the first is the baseline)."""
    return backtest_cities(rulesets, [(events, truth)], period, jobs, examples).backtests[0]


def _city_names(cities: list[CityIdentity | None], events: list[Path]) -> list[str]:
    """`seed 7` when every city is named by a seed of its own, else the events files, else numbers."""
    seeds = [city.seed if city is not None else None for city in cities]
    if None not in seeds and len(set(seeds)) == len(seeds):
        return [f"seed {seed}" for seed in seeds]
    paths = [str(path) for path in events]
    if len(set(paths)) == len(paths):
        return paths
    return [f"city {number}" for number in range(1, len(events) + 1)]


def simulate_city(simulate: Simulate, number: int) -> Pair:
    """Simulate the `number`th city of `simulate` (seed config.seed + number); its (events, truth) files.

    Events are Parquet (faster to read) unless the config asks for broken lines, which only JSON lines can carry.
    """
    from simulators.config import ORDER_FAULTS
    from simulators.output import TRUTH, write_run
    from simulators.run import Simulation

    config = simulate.config
    parquet = not (config.faults.share and set(config.faults.kinds) - set(ORDER_FAULTS))
    city = config.model_copy(update={"seed": config.seed + number})
    where = simulate.directory / f"seed-{city.seed}"
    try:
        events = write_run(Simulation(city), where, parquet=parquet)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write the simulated city to {where}: {error.strerror or error}") from None
    return events, where / TRUTH
