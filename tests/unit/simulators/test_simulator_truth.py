"""The ground truth is consistent with what happened in the simulated city."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from scoring.events import Ping, decode_event
from simulators.output import TRUTH
from simulators.truth import IMPORTED
from tests.unit.simulators.simruns import Run


@pytest.fixture(scope="module")
def truth(clean_run: Run) -> list[dict]:
    return pq.read_table(clean_run.directory / TRUTH).to_pylist()


def test_one_row_per_resident_so_no_one_is_infected_twice(clean_run: Run, truth: list[dict]) -> None:
    people = [row["person"] for row in truth]
    assert len(people) == len(set(people)) == clean_run.simulation.config.residents


def test_the_epidemic_spreads_beyond_the_imported_cases(truth: list[dict]) -> None:
    settings = {row["infection_setting"] for row in truth if row["infected_at"] is not None}
    local = [row for row in truth if row["infection_setting"] not in (None, IMPORTED)]
    assert len(local) >= 10
    assert {"home", "venue"} <= settings


def test_every_infector_was_infectious_and_at_the_same_place_at_that_moment(clean_run: Run, truth: list[dict]) -> None:
    by_person = {row["person"]: row for row in truth}
    index = {row["person"]: number for number, row in enumerate(truth)}
    place_of = {name: number for number, name in enumerate(_place_names(clean_run))}
    checked = 0
    for row in truth:
        if row["infector"] is None:
            continue
        infector = by_person[row["infector"]]
        moment = int(row["infected_at"].timestamp())
        assert infector["infectious_from"] <= row["infected_at"] < infector["infectious_until"]
        where = clean_run.locations[moment]
        assert where[index[row["person"]]] == where[index[row["infector"]]] == place_of[row["infection_place"]]
        checked += 1
    assert checked >= 10


def test_imported_cases_have_no_infector_and_were_infected_before_the_run(clean_run: Run, truth: list[dict]) -> None:
    imported = [row for row in truth if row["infection_setting"] == IMPORTED]
    assert len(imported) == 20
    assert all(
        row["infector"] is None and int(row["infected_at"].timestamp()) < clean_run.simulation.start for row in imported
    )


def test_each_course_runs_in_order(truth: list[dict]) -> None:
    for row in truth:
        if row["infected_at"] is None:
            assert all(row[name] is None for name in ("infector", "infectious_from", "recovered_at", "symptom_onset"))
            continue
        assert row["infected_at"] < row["infectious_from"] < row["infectious_until"] <= row["recovered_at"]
        if row["asymptomatic"]:
            assert row["symptom_onset"] is None
        else:
            assert row["infectious_from"] <= row["symptom_onset"] < row["infectious_until"]


def test_infectors_were_infected_before_those_they_infected(truth: list[dict]) -> None:
    by_person = {row["person"]: row for row in truth}
    for row in truth:
        if row["infector"] is not None:
            assert by_person[row["infector"]]["infected_at"] < row["infected_at"]


def test_diagnosed_people_had_a_positive_result_first(truth: list[dict]) -> None:
    diagnosed = [row for row in truth if row["diagnosed_at"] is not None]
    assert diagnosed
    assert all(
        row["first_positive_at"] is not None and row["first_positive_at"] < row["diagnosed_at"] for row in diagnosed
    )


def _place_names(run: Run) -> list[str]:
    from simulators.truth import place_names

    return place_names(run.simulation.city)


def test_at_midnight_nearly_everyone_is_at_home(clean_run: Run) -> None:
    city = clean_run.simulation.city
    midnight = min(clean_run.locations)
    assert (clean_run.locations[midnight] == city.person_home).mean() > 0.9


def test_pings_report_where_people_were_within_their_accuracy(clean_run: Run) -> None:
    simulation = clean_run.simulation
    city, slot = simulation.city, simulation.config.slot_seconds
    metres_lat = 110_574.0
    metres_lon = 111_320.0 * np.cos(np.radians(30.57))
    checked = {"gps": 0, "cell": 0, "venue": 0}
    for line in clean_run.events.read_bytes().splitlines()[:200_000]:
        event = decode_event(line)
        if not isinstance(event, Ping):
            continue
        moment = int(event.ts.timestamp())
        place = clean_run.locations[moment - (moment - simulation.start) % slot][int(event.person[1:])]
        north = (event.lat - city.place_lat[place]) * metres_lat
        east = (event.lon - city.place_lon[place]) * metres_lon
        if event.source == "venue":
            assert event.accuracy_m is None and abs(north) < 0.2 and abs(east) < 0.2
        else:
            assert np.hypot(north, east) < 4 * event.accuracy_m + 1
        checked[event.source] += 1
    assert all(count > 100 for count in checked.values())
