"""Replay: the whole core over a file, in event-time order, whatever the file's order."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.events import Ping, encode_event
from scoring.limits import LATEST
from scoring import eventfile
from scoring.eventfile import _hashes, _repeats, read_events, read_jsonl
from scoring.replay import replay, replay_file, time_order
from scoring.rules import load_rule_set
from scoring.synthetic import DAY, HOUR, result, visit
from scoring.timeutil import format_rfc3339, from_epoch, to_epoch

RULES = load_rule_set(Path(__file__).resolve().parents[3] / "rules" / "default.yaml")
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z
MINUTE = 60
HERE = (30.5900, 114.3000)
FAR = (30.6500, 114.4000)


def _ping(person: str, at: int, place: tuple[float, float]) -> Ping:
    return Ping(event_id=f"{person}-{at}", ts=from_epoch(at), person=person, lat=place[0], lon=place[1], source="gps")


def _together(minutes: int) -> list:
    """Case `c` and contact `k` side by side from T0, pinging every 5 minutes; `f` far away."""
    events = []
    for step in range(0, minutes + 1, 5):
        at = T0 + step * MINUTE
        events += [_ping("c", at, HERE), _ping("k", at, HERE), _ping("f", at, FAR)]
    return events


def _write(tmp_path: Path, events: list, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
    return path


@pytest.fixture
def outbreak() -> list:
    """`c` tests positive a day after sitting 30 minutes next to `k`."""
    sampled = T0 + DAY
    return _together(30) + [result("c", sampled, sampled + 6 * HOUR, positive=True)]


def _levels_of(changes: list, person: str) -> list[tuple[str, str]]:
    return [(format_rfc3339(c.at), c.level) for c in changes if c.person == person]


def test_a_close_contact_turns_red_when_the_case_is_confirmed_not_when_they_met(tmp_path, outbreak) -> None:
    result_ = replay_file(_write(tmp_path, outbreak), RULES)
    confirmed = T0 + DAY + 6 * HOUR
    contact = [c for c in result_.timeline if c.person == "k"]
    assert contact[0].at == confirmed and contact[0].level == "red"
    assert "close_contact" in {reason.rule for reason in contact[0].reasons}
    assert _levels_of(result_.timeline, "c")[0] == (format_rfc3339(confirmed), "red")
    assert _levels_of(result_.timeline, "f") == []
    assert result_.exposures >= 2


def test_the_contact_turns_green_exactly_fourteen_days_after_the_last_contact(tmp_path, outbreak) -> None:
    changes = replay_file(_write(tmp_path, outbreak), RULES, until=T0 + 20 * DAY).timeline
    last_stay_ends = T0 + 30 * MINUTE + 15 * MINUTE  # the last ping stands for at most max_gap (15m)
    assert _levels_of(changes, "k")[-1] == (format_rfc3339(last_stay_ends + 14 * DAY), "green")


def test_without_until_the_timeline_ends_at_the_last_event_time(tmp_path, outbreak) -> None:
    changes = replay_file(_write(tmp_path, outbreak), RULES).timeline
    assert [level for _, level in _levels_of(changes, "k")] == ["red"]


def test_until_stops_the_timeline_at_that_event_time(tmp_path, outbreak) -> None:
    path = _write(tmp_path, outbreak)
    changes = replay_file(path, RULES, until=T0 + 3 * DAY).timeline
    assert [level for _, level in _levels_of(changes, "k")] == ["red"]
    assert all(c.at <= T0 + 3 * DAY for c in changes)


def test_the_file_order_does_not_change_the_timeline(tmp_path, outbreak) -> None:
    expected = [c.to_json() for c in replay_file(_write(tmp_path, outbreak), RULES).timeline]
    shuffled = list(outbreak)
    random.Random(4).shuffle(shuffled)
    again = [c.to_json() for c in replay_file(_write(tmp_path, shuffled, "shuffled.jsonl"), RULES).timeline]
    assert again == expected


def test_malformed_lines_are_skipped_with_their_line_numbers_and_duplicates_applied_once(tmp_path, outbreak) -> None:
    path = _write(tmp_path, outbreak)
    lines = path.read_bytes().splitlines()
    lines.insert(2, b'{"type":"ping","event_id":"bad"}')
    lines.insert(5, b"not json at all")
    lines.append(lines[-1])
    path.write_bytes(b"\n".join(lines) + b"\n")
    inputs = read_events(path)
    assert [m.line for m in inputs.malformed] == [3, 6]
    assert "ping.ts: Field required" in inputs.malformed[0].reason
    assert inputs.duplicates == 1
    clean = replay_file(_write(tmp_path, outbreak, "clean.jsonl"), RULES).timeline
    assert [c.to_json() for c in replay(inputs, RULES).timeline] == [c.to_json() for c in clean]


def test_parquet_with_the_same_columns_gives_the_same_timeline(tmp_path, outbreak) -> None:
    rows = [e.model_dump() for e in outbreak]
    columns = sorted({key for row in rows for key in row})
    table = pa.table({name: [row.get(name) for row in rows] for name in columns})
    pq.write_table(table, tmp_path / "events.parquet")
    from_parquet = replay_file(tmp_path / "events.parquet", RULES)
    from_jsonl = replay_file(_write(tmp_path, outbreak), RULES)
    assert from_parquet.malformed == []
    assert [c.to_json() for c in from_parquet.timeline] == [c.to_json() for c in from_jsonl.timeline]


def test_a_corrected_positive_retracts_the_contacts_red(tmp_path, outbreak) -> None:
    sampled = T0 + DAY
    corrected_at = sampled + 30 * HOUR
    correction = result("c", sampled, corrected_at, positive=False)
    changes = replay_file(_write(tmp_path, outbreak + [correction]), RULES).timeline
    assert _levels_of(changes, "k") == [
        (format_rfc3339(sampled + 6 * HOUR), "red"),
        (format_rfc3339(corrected_at), "green"),
    ]


def test_the_timeline_is_ordered_by_time_then_person(tmp_path, outbreak) -> None:
    events = outbreak + [visit("a", T0 + DAY + 6 * HOUR, "fever_clinic")]
    changes = replay_file(_write(tmp_path, events), RULES).timeline
    keys = [(c.at, c.person) for c in changes]
    assert keys == sorted(keys)


def test_a_forward_contact_stays_red_while_the_contact_continues() -> None:
    events = [
        Ping(event_id=f"{p}{T0 + m * 60}", ts=from_epoch(T0 + m * 60), person=p, lat=30.59, lon=114.3, source="gps")
        for m in range(0, 600, 5) for p in ("c", "k")
    ] + [result("c", T0, T0 + 2 * HOUR, positive=True)]
    timeline = replay(read_jsonl(iter([encode_event(e) + b"\n" for e in events])), RULES).timeline
    assert [(c.at - T0, c.level) for c in timeline if c.person == "k"] == [(2 * HOUR, "red")]


FAR_FUTURE = 253_402_214_400  # 9999-12-31T00:00:00Z


def test_events_before_the_floor_are_skipped_with_the_reason_jsonl_and_parquet_alike(tmp_path, outbreak) -> None:
    early = [_ping("k", T0 - 30 * 365 * DAY, HERE), result("c", T0 - 30 * 365 * DAY, T0 + 2 * DAY, positive=True)]
    events = outbreak + early
    rows = [e.model_dump() for e in events]
    columns = sorted({key for row in rows for key in row})
    pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in columns}), tmp_path / "events.parquet")
    for inputs in (read_events(_write(tmp_path, events)), read_events(tmp_path / "events.parquet")):
        assert [m.line for m in inputs.malformed] == [len(outbreak) + 1, len(outbreak) + 2]
        assert inputs.malformed[0].reason == "ts: 1992-04-08T08:00:00Z is before 2000-01-01T00:00:00Z, the earliest accepted"
        assert inputs.malformed[1].reason.startswith("sampled_at: 1992-04-08T08:00:00Z is before")
        assert [c.to_json() for c in replay(inputs, RULES).timeline] == [
            c.to_json() for c in replay_file(_write(tmp_path, outbreak, "clean.jsonl"), RULES).timeline
        ]


def test_a_parquet_value_python_cannot_hold_refuses_only_its_own_row(tmp_path, outbreak) -> None:
    # A writer may use a timestamp column where the contract has text: year 10000 has no Python date.
    events = outbreak + [result("c", T0, T0 + 2 * DAY, positive=True), result("d", T0, T0 + 2 * DAY, positive=True)]
    rows = [e.model_dump() for e in events]
    table = pa.table({name: [row.get(name) for row in rows] for name in sorted({k for row in rows for k in row})})
    stamps = [None] * len(rows)
    stamps[-1] = 253_402_300_800 * 10**6  # 10000-01-01T00:00:00Z in microseconds
    table = table.append_column("stamped", pa.array(stamps, type=pa.timestamp("us", tz="UTC")))
    pq.write_table(table, tmp_path / "events.parquet")
    inputs = read_events(tmp_path / "events.parquet")
    assert [m.line for m in inputs.malformed] == [len(events)]
    assert inputs.malformed[0].reason.startswith("a value cannot be read: ")
    assert len(inputs.others) == len(read_events(_write(tmp_path, events[:-1])).others)


def test_a_far_future_event_costs_replay_only_itself_and_now_bounds_it_as_intake_would(tmp_path, outbreak) -> None:
    # No intake clock in a file: without `now` only year 9000 bounds it, and the core jumps the empty years.
    distant = LATEST - DAY
    events = outbreak + [result("k", distant - DAY, distant, positive=False),
                         result("f", FAR_FUTURE - DAY, FAR_FUTURE, positive=False)]
    path = _write(tmp_path, events)
    unbounded = read_events(path)
    assert [m.line for m in unbounded.malformed] == [len(events)]
    assert unbounded.malformed[0].reason == (
        "ts: 9999-12-31T00:00:00Z is after 9000-01-01T00:00:00Z, the latest any event may be"
    )
    timeline = replay(unbounded, RULES).timeline
    assert _levels_of(timeline, "k")[:1] == [("2022-04-02T14:00:00Z", "red")]
    bounded = read_events(path, now=T0 + 10 * DAY)
    assert [m.line for m in bounded.malformed] == [len(events) - 1, len(events)]
    assert bounded.malformed[0].reason.startswith("ts: 8999-12-31T00:00:00Z is more than 1d after the clock")


def test_ids_that_share_a_hash_are_repeats_only_when_equal() -> None:
    # Every row given the same hash: only an exact comparison of the ids can tell repeats.
    ids = np.array(["a", "b", "a", "c", "b"], dtype=object)
    repeated = _repeats([np.zeros(2, dtype=np.uint64), np.zeros(3, dtype=np.uint64)], lambda rows: ids[rows])
    assert repeated.tolist() == [False, False, True, False, True]


def test_an_id_hashes_alike_wherever_it_stands(monkeypatch) -> None:
    monkeypatch.setattr(eventfile, "_HASH_SLICE", 3)  # slices that start inside the array's buffers
    ids = ["e7-1", "", "e7-12345678", "事件-9", "e7-1", "x" * 64, "e7-12345678", "e7-10"]
    hashes = _hashes(pa.array(ids, type=pa.large_string())).tolist()
    assert _hashes(pa.array(ids[::-1]).slice(0)).tolist() == hashes[::-1]
    assert _hashes(pa.array(ids).slice(4)).tolist() == hashes[4:]
    assert [hashes[ids.index(i)] for i in ids] == hashes
    assert len(set(hashes)) == len(set(ids))


def _parquet(tmp_path: Path, events: list, name: str = "events.parquet") -> Path:
    rows = [e.model_dump() for e in events]
    columns = sorted({key for row in rows for key in row})
    pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in columns}), tmp_path / name)
    return tmp_path / name


def _late_and_repeated(outbreak: list) -> list:
    """The outbreak in a file order a stream would see: pings up to an hour late, some sent twice."""
    late = sorted(outbreak, key=lambda e: to_epoch(e.ts) + (3600 if e.event_id.startswith("k") else 0))
    return late[:7] + late[2:4] + late[7:] + late[20:21]


def test_a_parquet_file_is_read_batch_by_batch_and_late_rows_wait_only_as_long_as_needed(
    tmp_path, outbreak, monkeypatch
) -> None:
    monkeypatch.setattr(eventfile, "_BATCH", 5)
    inputs = read_events(_parquet(tmp_path, _late_and_repeated(outbreak)))
    assert inputs.duplicates == 3
    batches = list(inputs.pings.batches())
    assert len(batches) > 4 and all(len(batch.ts) <= 5 for batch in batches)
    for index, batch in enumerate(batches):
        following = np.concatenate([np.empty(0, dtype=np.int64), *(later.ts for later in batches[index + 1:])])
        if batch.later is None:
            assert len(following) == 0
        else:
            assert following.min() == batch.later  # a bound, and the tightest one: nothing waits longer
    timeline = [c.to_json() for c in replay(inputs, RULES).timeline]
    assert timeline == [c.to_json() for c in replay_file(_write(tmp_path, outbreak), RULES).timeline]
    assert inputs.persons() == _named(inputs)  # reading only the person column again


def _named(inputs) -> set[str]:
    """The persons the pings given batch by batch and the other events name."""
    named = {person for batch in inputs.pings.batches() for person in batch.persons.tolist()}
    assert named
    return named | {event.person for _, _, event in inputs.others if hasattr(event, "person")}


def test_json_lines_are_replayed_stretch_by_stretch_alike(tmp_path, outbreak, monkeypatch) -> None:
    monkeypatch.setattr(eventfile, "_BATCH", 5)
    inputs = read_events(_write(tmp_path, _late_and_repeated(outbreak), "late.jsonl"))
    assert inputs.duplicates == 3
    assert len(list(inputs.pings.batches())) > 4
    assert inputs.persons() == _named(inputs)
    monkeypatch.setattr(eventfile, "_BATCH", 500_000)
    expected = replay_file(_write(tmp_path, outbreak), RULES)
    assert [c.to_json() for c in replay(inputs, RULES).timeline] == [c.to_json() for c in expected.timeline]


def test_scoring_reports_progress_batch_by_batch_up_to_every_event(tmp_path, outbreak, monkeypatch) -> None:
    monkeypatch.setattr(eventfile, "_BATCH", 5)
    inputs = read_events(_parquet(tmp_path, outbreak))
    told: list[int] = []
    replay(inputs, RULES, progress=told.append)
    assert len(told) > 4  # after each batch, not only at the end
    assert told == sorted(told) and told[-1] == inputs.count
    assert told[0] <= 5 < inputs.count  # a batch is counted once it is scored, not before


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 20)), max_size=40), st.integers(0, 40))
def test_pings_are_arranged_by_time_then_arrival_whatever_order_they_come_in(rows, held) -> None:
    # The first `held` rows stand for those held from earlier batches (sorted), the rest for a batch.
    ts = np.array([t for t, _ in rows], dtype=np.int64)
    arrival = np.array([a for _, a in rows], dtype=np.int64)
    first = np.lexsort((arrival[:held], ts[:held]))
    ts[:held], arrival[:held] = ts[:held][first], arrival[:held][first]
    arranged = time_order(ts, arrival)
    assert list(zip(ts[arranged].tolist(), arrival[arranged].tolist())) == sorted(zip(ts.tolist(), arrival.tolist()))
