"""The health system's events tell a coherent story per person."""

from __future__ import annotations

from collections import defaultdict

import pytest

from scoring.events import TestResult, Visit, decode_event
from simulators.health import HealthSystem
from tests.unit.simulators.simruns import Run, make_run, small_config


@pytest.fixture(scope="module")
def story(clean_run: Run) -> dict[str, list]:
    per_person: dict[str, list] = defaultdict(list)
    for line in clean_run.events.read_bytes().splitlines():
        if b'"type":"ping"' in line:
            continue
        event = decode_event(line)
        if isinstance(event, (Visit, TestResult)):
            per_person[event.person].append(event)
    for events in per_person.values():
        events.sort(key=lambda event: event.ts)
    return per_person


def test_a_fever_clinic_visit_takes_an_antigen_and_a_pcr_sample(clean_run: Run, story: dict) -> None:
    results_known_by_end = clean_run.simulation.end - 86_400
    visits = 0
    for events in story.values():
        for visit in (e for e in events if isinstance(e, Visit) and e.kind == "fever_clinic"):
            if visit.ts.timestamp() >= results_known_by_end:
                continue
            samples = {e.test for e in events if isinstance(e, TestResult) and e.sampled_at == visit.ts}
            assert samples == {"antigen", "pcr"}
            visits += 1
    assert visits > 0


def test_a_diagnosis_follows_two_positive_pcr_results(story: dict) -> None:
    diagnoses = 0
    for events in story.values():
        for diagnosis in (e for e in events if isinstance(e, Visit) and e.kind == "diagnosis"):
            before = [
                e for e in events if isinstance(e, TestResult) and e.ts <= diagnosis.ts and e.result == "positive"
            ]
            assert sum(e.test == "pcr" for e in before) >= 1 and len(before) >= 2
            diagnoses += 1
    assert diagnoses > 0


def test_each_person_is_diagnosed_at_most_once_and_recovers_only_after(story: dict) -> None:
    for events in story.values():
        kinds = [e.kind for e in events if isinstance(e, Visit) and e.kind != "fever_clinic"]
        assert kinds in ([], ["diagnosis"], ["diagnosis", "recovery"])


def test_visits_name_a_hospital_of_the_city(clean_run: Run, story: dict) -> None:
    hospitals = set(clean_run.simulation.city.hospital_names)
    assert {e.facility for events in story.values() for e in events if isinstance(e, Visit)} <= hospitals


def test_diagnosed_people_spend_their_isolation_on_a_ward(clean_run: Run) -> None:
    simulation = clean_run.simulation
    health: HealthSystem = simulation.health
    city = simulation.city
    isolated = 0
    for moment, where in clean_run.locations.items():
        inside = health.isolated.active(moment)
        assert (where[inside] == city.person_hospital[inside]).all()
        isolated += int(inside.sum())
    assert isolated > 0


def test_recoveries_are_reported_in_a_longer_run(tmp_path) -> None:
    run = make_run(
        tmp_path, small_config(days=12, mobility={"ping_interval_minutes": 240}, health={"minimum_stay_days": 2})
    )
    kinds = {decode_event(line).kind for line in run.events.read_bytes().splitlines() if b'"type":"visit"' in line}
    assert kinds == {"fever_clinic", "diagnosis", "recovery"}
