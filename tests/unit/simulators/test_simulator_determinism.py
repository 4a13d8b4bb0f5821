"""The same seed gives the same run, byte for byte; another seed gives another run."""

from __future__ import annotations

from pathlib import Path

from simulators.config import FaultConfig
from simulators.output import CITY, EVENTS_JSONL, FAULTS, TRUTH
from tests.unit.simulators.simruns import make_run, small_config


def _bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in (EVENTS_JSONL, FAULTS, TRUTH, CITY)}


def test_same_seed_writes_identical_files(tmp_path: Path) -> None:
    config = small_config(residents=400, days=2, faults=FaultConfig(share=0.05))
    first = make_run(tmp_path / "a", config)
    second = make_run(tmp_path / "b", config)
    assert _bytes(first.directory) == _bytes(second.directory)


def test_same_seed_writes_identical_parquet(tmp_path: Path) -> None:
    config = small_config(residents=300, days=1)
    first = make_run(tmp_path / "a", config, parquet=True)
    second = make_run(tmp_path / "b", config, parquet=True)
    assert first.events.read_bytes() == second.events.read_bytes()


def test_another_seed_gives_another_city_and_stream(tmp_path: Path) -> None:
    first = make_run(tmp_path / "a", small_config(residents=300, days=1, seed=1))
    second = make_run(tmp_path / "b", small_config(residents=300, days=1, seed=2))
    assert first.events.read_bytes() != second.events.read_bytes()
    assert (first.directory / CITY).read_bytes() != (second.directory / CITY).read_bytes()
