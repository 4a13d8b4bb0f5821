"""Column-wise ping checks: edge cases the property test does not draw."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from scoring.columns import ping_rows
from scoring.replay import read_events

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
