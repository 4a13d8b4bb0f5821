"""Small simulated runs shared by the simulator tests (each made once per session)."""

from __future__ import annotations

import pytest

from simulators.config import FaultConfig
from tests.unit.simulators.simruns import Run, make_run, small_config


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A run without faults, with every slot's locations recorded."""
    return make_run(
        tmp_path_factory.mktemp("clean"), small_config(mobility={"ping_interval_minutes": 60}), observe=True
    )


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A run with 3% of events given faults of every kind."""
    return make_run(tmp_path_factory.mktemp("faulty"), small_config(days=2, faults=FaultConfig(share=0.03)))
