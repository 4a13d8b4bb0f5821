"""What the step tests share: a signing key, and a small simulated city and its replay.

A module says which city with a `city_config` fixture of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from codes import Algorithm, SigningKey, generate_signing_key
from scoring.events import Ping, TestResult, encode_event
from scoring.replay import ReplayResult, replay_file
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
WALL = 1_700_000_000.0
"""The wall clock the drivers are given."""
DAY = 86_400


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return generate_signing_key(Algorithm.EDDSA, int(WALL) - 3600, int(WALL) + 30 * DAY)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, city_config: SimulationConfig) -> Path:
    """The events file of the module's city."""
    return write_run(Simulation(city_config), tmp_path_factory.mktemp("city"))


@pytest.fixture(scope="module")
def replayed(city: Path) -> ReplayResult:
    return replay_file(city, load_rule_set(RULES))


@dataclass(frozen=True)
class ContactThenCase:
    """Two persons side by side for half an hour from `at`, then apart; `positive`, the first
    one's positive result sampled two hours after `at`, arrives an hour after that."""

    at: int
    pings: list[bytes]
    positive: bytes


def _ping(person: str, at: int, lat: float = 30.66, lon: float = 104.06) -> bytes:
    return encode_event(Ping(event_id=f"ping-{person}-{at}", ts=datetime.fromtimestamp(at, timezone.utc),
                             person=person, lat=lat, lon=lon, source="gps"))


@pytest.fixture
def contact_then_case() -> ContactThenCase:
    at = 1_650_000_000
    together = [_ping(person, at + 60 * minute) for minute in range(31) for person in ("p-case", "p-near")]
    apart = [_ping(person, at + 60 * minute, lat=lat) for minute in range(40, 150, 5)
             for person, lat in (("p-case", 31.0), ("p-near", 32.0))]
    positive = encode_event(TestResult(
        event_id="test-1", ts=datetime.fromtimestamp(at + 3 * 3600, timezone.utc), person="p-case",
        sampled_at=datetime.fromtimestamp(at + 2 * 3600, timezone.utc), test="pcr", result="positive"))
    return ContactThenCase(at, together + apart, positive)
