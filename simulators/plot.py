"""A picture of a run: infections, cases found and district designations over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from simulators.frames import HIGH, MEDIUM
from simulators.run import Simulation
from simulators.transmission import NEVER

_HOUR = 3_600


@dataclass(frozen=True)
class Timeline:
    """What the plot shows, as plain arrays of epoch seconds."""

    start: int
    end: int
    infected_at: np.ndarray
    first_positive_at: np.ndarray
    diagnosed_at: np.ndarray
    designations: list[tuple[int, int, int]]
    districts: int
    title: str
    utc_offset_hours: int


def timeline(simulation: Simulation) -> Timeline:
    """The plot's data from a finished simulation."""
    config = simulation.config
    return Timeline(
        start=simulation.start,
        end=simulation.end,
        infected_at=simulation.epidemic.infected_at,
        first_positive_at=simulation.health.first_positive_at,
        diagnosed_at=simulation.health.diagnosed_at,
        designations=[(d.ts, d.district, d.level) for d in simulation.designations],
        districts=len(simulation.city.districts),
        utc_offset_hours=config.city.utc_offset_hours,
        title=f"{config.city.name} (synthetic): {config.residents:,} residents, {config.days} days, seed {config.seed}",
    )


def _cumulative(times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    happened = np.sort(times[times != NEVER])
    return np.searchsorted(happened, grid, side="right")


def _designated(data: Timeline, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    level = np.zeros((grid.size, data.districts), dtype=np.int8)
    for ts, district, new_level in sorted(data.designations):
        level[grid >= ts, district] = new_level
    return (level == HIGH).sum(axis=1), (level == MEDIUM).sum(axis=1)


def plot(data: Timeline, path: Path) -> None:
    """Write a PNG with three panels sharing the time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    local = timezone(timedelta(hours=data.utc_offset_hours))
    grid = np.arange(data.start, data.end + 1, _HOUR)
    when = [datetime.fromtimestamp(int(t), tz=local) for t in grid]
    infections = _cumulative(data.infected_at, grid)
    positives = _cumulative(data.first_positive_at, grid)
    diagnoses = _cumulative(data.diagnosed_at, grid)
    high, medium = _designated(data, grid)

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    figure.suptitle(data.title)
    top.plot(when, infections, color="tab:red", label="infected (ground truth, cumulative)")
    top.plot(when, diagnoses, color="tab:blue", label="cases diagnosed (cumulative)")
    top.plot(when, positives, color="tab:cyan", linestyle="--", label="first positive result known (cumulative)")
    top.set_ylabel("people")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)

    day_edges = np.arange(data.start, data.end + 1, 86_400)
    day_starts = [datetime.fromtimestamp(int(t), tz=local) for t in day_edges[:-1]]
    new_infections = np.diff(_cumulative(data.infected_at, day_edges))
    new_cases = np.diff(_cumulative(data.diagnosed_at, day_edges))
    width = 0.4
    middle.bar(
        [d for d in day_starts], new_infections, width=width, align="edge", color="tab:red", label="new infections"
    )
    middle.bar(
        [mdates.num2date(mdates.date2num(d) + width) for d in day_starts],
        new_cases,
        width=width,
        align="edge",
        color="tab:blue",
        label="new cases diagnosed",
    )
    middle.set_ylabel("per day")
    middle.legend(loc="upper left")
    middle.grid(alpha=0.3)

    bottom.step(when, high, where="post", color="darkred", label="high-risk districts")
    bottom.step(when, medium, where="post", color="orange", label="medium-risk districts")
    bottom.set_ylabel(f"districts (of {data.districts})")
    bottom.set_ylim(-0.2, max(1, int(max(high.max(initial=0), medium.max(initial=0)))) + 0.5)
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=local))
    bottom.set_xlabel(f"local date (UTC{data.utc_offset_hours:+d})")
    figure.savefig(path, dpi=110)
    plt.close(figure)
