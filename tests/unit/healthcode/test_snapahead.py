"""Pings snapped a batch ahead in a helper process: the same timeline, and the helper is not a single point of failure."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest

import healthcode.snapahead as snapahead_module
import scoring.cells as cells_module
from healthcode.snapahead import SnapAhead
from scoring import eventfile
from scoring.eventfile import read_events
from scoring.replay import replay
from scoring.rules import load_rule_set
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rule_set(ROOT / "rules" / "default.yaml")
# Seeded with cases on day one, so that contacts, companions and their levels are found.
CITY = SimulationConfig.model_validate(
    {"residents": 300, "days": 3, "seed": 7, "disease": {"initial_infections": 12}}
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(Simulation(CITY), tmp_path_factory.mktemp("city"), parquet=True)


def _lines(result) -> list[dict]:
    return [change.to_json() for change in result.timeline]


def test_a_city_snapped_ahead_batch_by_batch_has_the_timeline_snapped_in_process(city, monkeypatch) -> None:
    monkeypatch.setattr(eventfile, "_BATCH", 4_000)  # many batches, with late rows carried from one to the next
    inputs = read_events(city)
    assert len(list(inputs.pings.batches())) > 10
    expected = replay(inputs, RULES)
    assert any(change.level != "green" for change in expected.timeline)

    def not_here(*args, **kwargs):
        raise AssertionError("the scoring core snapped a position")

    snapped_here = []

    def counted(lat, lon, resolution):
        snapped_here.append(len(lat))
        return real_snap(lat, lon, resolution)

    # The helper is another process: these replace the snapping of this one only.
    real_snap = cells_module.snap
    monkeypatch.setattr(cells_module, "snap", not_here)
    monkeypatch.setattr(snapahead_module, "snap", counted)
    with SnapAhead() as snap_ahead:
        ahead = replay(inputs, RULES, None, snap_ahead)
    assert _lines(ahead) == _lines(expected)
    first = next(iter(inputs.pings.batches()))
    assert snapped_here == [len(first.ts)]  # only the first batch, while the helper started
    assert (ahead.exposures, ahead.levels) == (expected.exposures, expected.levels)


def test_when_the_helper_dies_the_batches_are_snapped_here_and_nothing_changes(city, monkeypatch) -> None:
    monkeypatch.setattr(eventfile, "_BATCH", 4_000)
    inputs = read_events(city)
    expected = replay(inputs, RULES)
    others = {child.pid for child in psutil.Process().children()}  # other tests' helpers live on
    with SnapAhead() as snap_ahead:
        batches = snap_ahead(inputs.pings.batches(), [10])
        next(batches)  # the helper is running, a batch ahead
        helpers = [child for child in psutil.Process().children()
                   if child.pid not in others and "spawn_main" in " ".join(child.cmdline())]
        assert len(helpers) == 1
        for helper in helpers:
            helper.send_signal(signal.SIGKILL)
        rest = list(batches)
        assert rest and all((cells[10] == cells_module.snap(batch.lat, batch.lon, 10)).all() for batch, cells in rest)
        assert _lines(replay(inputs, RULES, None, snap_ahead)) == _lines(expected)


def test_without_a_helper_each_batch_comes_with_its_cells_snapped_here(city) -> None:
    inputs = read_events(city)
    given = list(SnapAhead()(inputs.pings.batches(), [10, 8]))  # never entered: no helper started
    assert given
    for batch, cells in given:
        assert (cells[10] == cells_module.snap(batch.lat, batch.lon, 10)).all()
        assert (cells[8] == cells_module.snap(batch.lat, batch.lon, 8)).all()
