"""The ground truth is consistent with what happened in the simulated city."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

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
    assert all(row["infector"] is None and int(row["infected_at"].timestamp()) < clean_run.simulation.start for row in imported)


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
    assert all(row["first_positive_at"] is not None and row["first_positive_at"] < row["diagnosed_at"] for row in diagnosed)


def _place_names(run: Run) -> list[str]:
    from simulators.truth import place_names

    return place_names(run.simulation.city)


def test_pings_of_people_at_home_scatter_around_their_home(clean_run: Run) -> None:
    city = clean_run.simulation.city
    moment = min(clean_run.locations)
    at_home = np.flatnonzero(clean_run.locations[moment] == city.person_home)
    assert at_home.size > 0.9 * city.residents
