"""Column-wise ping checks: edge cases the property test does not draw."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.columns import PersonCoder, PersonNotes, PingRows, ping_rows
from scoring.pseudonyms import Roster
from scoring.eventfile import read_events

FAR = 400_000_000_000  # epoch seconds in the year 14645


def test_ping_rows_accepts_nothing_from_a_batch_whose_ping_columns_are_null_typed() -> None:
    # As pyarrow infers a table of Python rows with no ping in it (pa.table / pandas).
    batch = pa.RecordBatch.from_pydict({
        "event_id": ["v1"], "type": ["visit"], "ts": pa.array([1_648_800_000], pa.timestamp("s", tz="UTC")),
        "person": ["a"], "facility": ["Clinic"], "kind": ["fever_clinic"],
        "lat": pa.nulls(1), "lon": pa.nulls(1), "source": pa.nulls(1), "accuracy_m": pa.nulls(1),
    })
    assert ping_rows(batch)[0].tolist() == [False]


def _batch() -> pa.RecordBatch:
    ts = pa.array([FAR, FAR], pa.int64()).cast(pa.timestamp("s", tz="UTC"))
    return pa.RecordBatch.from_pydict({
        "event_id": ["p1", "v1"], "type": ["ping", "visit"], "ts": ts, "person": ["a", "b"],
        "lat": [30.0, None], "lon": [114.0, None], "source": ["gps", None],
        "facility": [None, "Clinic"], "kind": [None, "fever_clinic"],
    })


def test_ping_rows_rejects_a_time_the_contract_cannot_express() -> None:
    assert ping_rows(_batch())[0].tolist() == [False, False]


def test_replay_reports_rows_with_such_times_as_malformed_instead_of_crashing(tmp_path) -> None:
    pq.write_table(pa.Table.from_batches([_batch()]), tmp_path / "far.parquet")
    inputs = read_events(tmp_path / "far.parquet")
    assert [m.line for m in inputs.malformed] == [1, 2]


def _persons(names: list[str], dictionary: list[str]) -> pa.RecordBatch:
    """A batch whose person column is dictionary-encoded against `dictionary`, as a Parquet row group's is."""
    indices = pa.array([dictionary.index(name) for name in names], pa.int32())
    return pa.RecordBatch.from_pydict({"person": pa.DictionaryArray.from_arrays(indices, pa.array(dictionary))})


class _CountingRoster(Roster):
    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def code(self, name: str) -> int:
        self.asked += 1
        return super().code(name)


def test_a_dictionary_every_batch_repeats_is_coded_once_and_each_row_gets_its_persons_code() -> None:
    city = ["ann", "bob", "cy", "dee"]
    roster = _CountingRoster()
    coder = PersonCoder(roster)
    batches = [_persons(["bob", "dee", "ann"], city), _persons(["dee", "cy"], city), _persons(["eve", "bob"], ["bob", "eve"])]
    coded = [coder.codes(batch, np.array([0, 1])) for batch in batches]
    assert [[roster.names[code] for code in codes.tolist()] for codes in coded] == [["bob", "dee"], ["dee", "cy"], ["eve", "bob"]]
    assert roster.asked == len(city) + 2  # the city's dictionary once, then the other one


def test_noting_persons_names_those_of_the_rows_asked_for_across_dictionaries_and_codes_nothing() -> None:
    city = ["ann", "bob", "cy", "dee"]
    noted = PersonNotes()
    noted.note(_persons(["bob", "dee", "ann"], city), np.array([0, 1]))
    noted.note(_persons(["cy", "cy"], city), np.array([1]))
    noted.note(_persons(["eve", "bob"], ["bob", "eve"]), np.array([0]))
    noted.note(pa.RecordBatch.from_pydict({"person": ["fay", "gus"]}), np.array([1]))
    assert noted.named() == {"bob", "dee", "cy", "eve", "gus"}


def _pings(names: list[str], dictionary: list[str]) -> pa.RecordBatch:
    """Pings of `names`, the person column encoded against `dictionary` (as a Parquet row group's is)."""
    count = len(names)
    persons = pa.DictionaryArray.from_arrays(pa.array([dictionary.index(n) for n in names], pa.int32()), pa.array(dictionary))
    return pa.RecordBatch.from_pydict({
        "event_id": [f"p{i}" for i in range(count)], "type": ["ping"] * count,
        "ts": pa.array([1_648_800_000] * count, pa.int64()).cast(pa.timestamp("s", tz="UTC")), "person": persons,
        "lat": [30.0] * count, "lon": [114.0] * count, "source": ["gps"] * count,
    })


def test_checking_a_files_batches_in_turn_finds_the_rows_each_batch_alone_would() -> None:
    city, other = ["ann", "b b", "cy"], ["b b", "ann", "c;y"]
    batches = [_pings(["ann", "b b", "cy"], city), _pings(["cy", "b b"], city), _pings(["ann", "c;y", "b b"], other),
               _pings(["ann", "cy", "b b"], city)]
    checks = PingRows()
    found = [checks(batch)[0].tolist() for batch in batches]
    assert found == [ping_rows(batch)[0].tolist() for batch in batches]
    assert found == [[True, False, True], [True, False], [True, False, False], [True, True, False]]
