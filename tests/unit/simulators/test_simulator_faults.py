"""Injected faults are exactly those listed in the faults file, and of the stated kind."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import orjson
import pytest

from scoring.events import EventError, decode_event
from simulators.config import FAULT_KINDS
from simulators.output import FAULTS
from tests.unit.simulators.simruns import Run

_DEAD_LETTER_KIND = {"malformed_json": "invalid_json", "wrong_type": "invalid_field", "unknown_field": "unknown_field"}


@pytest.fixture(scope="module")
def faults(faulty_run: Run) -> dict[int, dict]:
    return {
        entry["line"]: entry for entry in map(orjson.loads, (faulty_run.directory / FAULTS).read_bytes().splitlines())
    }


@pytest.fixture(scope="module")
def lines(faulty_run: Run) -> list[bytes]:
    return faulty_run.events.read_bytes().splitlines()


def test_every_kind_is_injected_at_about_the_stated_share(faults: dict, lines: list) -> None:
    kinds = Counter(entry["kind"] for entry in faults.values())
    assert set(kinds) == set(FAULT_KINDS)
    assert 0.02 < len(faults) / len(lines) < 0.04


def test_lines_not_in_the_faults_file_are_valid_and_unique(faults: dict, lines: list) -> None:
    ids = [decode_event(line).event_id for number, line in enumerate(lines, 1) if number not in faults]
    assert len(ids) == len(set(ids))


def test_content_faults_are_rejected_for_the_reason_of_their_kind(faults: dict, lines: list) -> None:
    for number, entry in faults.items():
        if entry["kind"] in _DEAD_LETTER_KIND:
            with pytest.raises(EventError) as caught:
                decode_event(lines[number - 1])
            assert caught.value.kind == _DEAD_LETTER_KIND[entry["kind"]]


def test_duplicates_resend_an_earlier_line_with_the_same_event_id(faults: dict, lines: list) -> None:
    first_line: dict[str, tuple[int, bytes]] = {}
    for number, line in enumerate(lines, 1):
        entry = faults.get(number)
        event_id = entry["event_id"] if entry else decode_event(line).event_id
        first_line.setdefault(event_id, (number, line))
    duplicates = [(number, entry) for number, entry in faults.items() if entry["kind"] == "duplicate"]
    assert duplicates
    for number, entry in duplicates:
        original_number, original = first_line[entry["event_id"]]
        assert original_number < number
        if original_number in faults:
            # the first copy was mangled on its way: the resent one is the good one
            assert faults[original_number]["kind"] in _DEAD_LETTER_KIND
            assert decode_event(lines[number - 1]).event_id == entry["event_id"]
        else:
            assert lines[number - 1] == original


def test_late_and_out_of_order_events_are_valid_but_behind_the_stream(faults: dict, lines: list) -> None:
    newest = None
    behind = {"late": [], "out_of_order": []}
    for number, line in enumerate(lines, 1):
        entry = faults.get(number)
        try:
            event = decode_event(line)
        except EventError:
            continue
        if entry and entry["kind"] in behind:
            assert event.event_id == entry["event_id"]
            behind[entry["kind"]].append(newest - event.ts)
        newest = event.ts if newest is None else max(newest, event.ts)
    late, shuffled = behind["late"], behind["out_of_order"]
    assert late and shuffled
    assert min(late) > timedelta(minutes=30)
    # a few out-of-order events were buffered on the device too, so they lag further
    assert sum(gap < timedelta(minutes=10) for gap in shuffled) > 0.9 * len(shuffled)
    assert sum(gap > timedelta(0) for gap in shuffled) > len(shuffled) / 2
