"""For any seed and small city: every event validates, ids are unique, the truth holds."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.events import decode_event
from simulators.config import SimulationConfig
from simulators.render import Renderer
from simulators.run import Simulation
from simulators.transmission import NEVER

configs = st.builds(
    lambda seed, residents, interval, infected, beta: SimulationConfig.model_validate(
        {
            "residents": residents,
            "days": 2,
            "seed": seed,
            "mobility": {"ping_interval_minutes": interval},
            "disease": {"initial_infections": infected, "beta_home": beta, "beta_venue": beta, "beta_work": beta},
        }
    ),
    st.integers(0, 2**32),
    st.integers(30, 160),
    st.sampled_from([60, 120, 240]),
    st.integers(1, 10),
    st.floats(1e-4, 5e-3),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_small_city_emits_valid_unique_events_and_a_consistent_truth(config: SimulationConfig) -> None:
    simulation = Simulation(config)
    renderer = Renderer(simulation.city, config.seed)
    locations: dict[int, np.ndarray] = {}
    ids: set[str] = set()
    count = 0
    for block in simulation.blocks(lambda moment, where: locations.__setitem__(moment, where.copy())):
        for chunk in renderer.lines(block.events, 100_000):
            for line in chunk.to_pylist():
                event = decode_event(line)
                assert event.event_id not in ids
                ids.add(event.event_id)
                count += 1
    assert count == simulation.summary()["events_total"]

    epidemic = simulation.epidemic
    for person in np.flatnonzero(epidemic.infector >= 0):
        infector = epidemic.infector[person]
        moment = int(epidemic.infected_at[person])
        assert epidemic.infectious_from[infector] <= moment < epidemic.infectious_until[infector]
        assert locations[moment][person] == locations[moment][infector] == epidemic.infection_place[person]
        assert epidemic.infected_at[infector] < moment
    infected = epidemic.infected_at != NEVER
    assert (epidemic.infectious_from[infected] > epidemic.infected_at[infected]).all()
