"""Every event the simulator emits is a valid contract-v1 event, in arrival order."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import orjson
import pyarrow.parquet as pq
import pytest

from scoring.events import AreaRisk, Ping, TestResult, Visit, decode_event
from tests.unit.simulators.simruns import Run, make_run, small_config


@pytest.fixture(scope="module")
def events(clean_run: Run) -> list:
    return [decode_event(line) for line in clean_run.events.read_bytes().splitlines()]


def test_every_line_of_a_clean_run_validates(clean_run: Run, events: list) -> None:
    assert len(events) == clean_run.simulation.summary()["events_total"]


def test_event_ids_are_unique_without_duplicate_faults(events: list) -> None:
    ids = [event.event_id for event in events]
    assert len(set(ids)) == len(ids)


def test_all_four_event_types_and_every_visit_kind_occur(events: list) -> None:
    types = Counter(event.type for event in events)
    assert set(types) == {"ping", "visit", "test_result", "area_risk"}
    kinds = {event.kind for event in events if isinstance(event, Visit)}
    assert {"fever_clinic", "diagnosis"} <= kinds
    sources = {event.source for event in events if isinstance(event, Ping)}
    assert sources == {"gps", "cell", "venue"}


def test_pseudonyms_are_opaque_ids(events: list) -> None:
    people = {event.person for event in events if not isinstance(event, AreaRisk)}
    assert all(re.fullmatch(r"p\d{6}", person) for person in people)


def test_events_lie_inside_the_simulated_period(clean_run: Run, events: list) -> None:
    simulation = clean_run.simulation
    assert all(simulation.start <= int(event.ts.timestamp()) < simulation.end for event in events)


def test_results_are_known_after_sampling(events: list) -> None:
    results = [event for event in events if isinstance(event, TestResult)]
    assert results
    assert all(event.sampled_at < event.ts for event in results)
    assert {event.test for event in results} == {"pcr", "antigen"}


def test_pings_fall_inside_the_city_box_give_or_take_their_accuracy(clean_run: Run, events: list) -> None:
    box = clean_run.simulation.config.city
    margin = 0.05
    for event in events:
        if isinstance(event, Ping):
            assert box.south - margin < event.lat < box.north + margin
            assert box.west - margin < event.lon < box.east + margin


def test_stream_is_ordered_by_arrival_so_some_events_come_after_newer_ones(events: list) -> None:
    newest = events[0].ts
    behind = 0
    for event in events:
        if event.ts < newest - timedelta(minutes=2):
            behind += 1
        newest = max(newest, event.ts)
    assert 0 < behind < len(events) * 0.05


def test_areas_are_districts_with_their_polygons(clean_run: Run, events: list) -> None:
    districts = {d.id: d for d in clean_run.simulation.city.districts}
    areas = [event for event in events if isinstance(event, AreaRisk)]
    opening = areas[: len(districts)]
    assert {a.area for a in opening} == set(districts) and {a.level for a in opening} == {"low"}
    for area in areas:
        ring = [list(position) for position in area.geometry.coordinates[0]]
        assert ring == districts[area.area].ring()


def test_parquet_rows_are_the_same_events_as_the_json_lines(tmp_path, events: list) -> None:
    config = small_config(residents=300, days=2)
    jsonl = make_run(tmp_path / "jsonl", config)
    parquet = make_run(tmp_path / "parquet", config, parquet=True)
    from_lines = [decode_event(line) for line in jsonl.events.read_bytes().splitlines()]
    rows = pq.read_table(parquet.events).to_pylist()
    from_rows = []
    for row in rows:
        present = {name: value for name, value in row.items() if value is not None}
        if "geometry" in present:
            present["geometry"] = orjson.loads(present["geometry"])
        from_rows.append(decode_event(orjson.dumps(present)))
    assert from_rows == from_lines
