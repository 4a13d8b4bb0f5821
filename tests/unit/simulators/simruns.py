"""Helpers to simulate small runs in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation


@dataclass
class Run:
    """A finished run: its simulation, the directory written, and every slot's locations."""

    simulation: Simulation
    directory: Path
    events: Path
    locations: dict[int, np.ndarray] = field(default_factory=dict)


def small_config(**changes: object) -> SimulationConfig:
    """A city small enough to simulate in a second, busy enough to have cases."""
    settings: dict[str, object] = {"residents": 1_500, "days": 5, "seed": 3, "disease": {"initial_infections": 20}}
    settings.update(changes)
    return SimulationConfig.model_validate(settings)


def make_run(directory: Path, config: SimulationConfig, parquet: bool = False, observe: bool = False) -> Run:
    """Simulate `config` into `directory`."""
    simulation = Simulation(config)
    run = Run(simulation, directory, directory)
    recorder = (lambda moment, location: run.locations.__setitem__(moment, location.copy())) if observe else None
    run.events = write_run(simulation, directory, parquet=parquet, observe=recorder)
    return run
