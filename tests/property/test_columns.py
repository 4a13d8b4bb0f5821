"""The column-wise ping check never accepts a row the contract rejects, and never loses a valid ping.

`scoring.columns.ping_rows` lets replay skip the pydantic models for the bulk of a
Parquet file; the models stay the contract. Rows are drawn as valid pings, pings with
one field broken in a way contract v1 forbids, and events of other types, in the
column types the simulator writes.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.columns import PersonCoder, ping_columns, ping_rows
from scoring.events import EventError, Ping, decode_event
from scoring.timeutil import to_epoch
from scoring.pseudonyms import Roster

T0 = 1_648_800_000_000  # 2022-04-01T08:00:00Z in milliseconds
SQUARE = '{"type":"Polygon","coordinates":[[[114.3,30.5],[114.4,30.5],[114.4,30.6],[114.3,30.5]]]}'


def _schema(time_unit: str, zone: str | None = "UTC", dictionaries: bool = True) -> pa.Schema:
    """The simulator's events schema (simulators/render.py), with times in `time_unit` and `zone`.

    Without `dictionaries`, text columns are plain strings (as a Parquet file written
    from Python rows has them).
    """
    moment = pa.timestamp(time_unit, tz=zone)

    def _coded(index: pa.DataType) -> pa.DataType:
        return pa.dictionary(index, pa.string()) if dictionaries else pa.string()

    return pa.schema(
        [
            ("event_id", pa.string()),
            ("type", _coded(pa.int8())),
            ("ts", moment),
            ("person", _coded(pa.int32())),
            ("lat", pa.float64()),
            ("lon", pa.float64()),
            ("accuracy_m", pa.float64()),
            ("source", _coded(pa.int8())),
            ("facility", _coded(pa.int16())),
            ("kind", _coded(pa.int8())),
            ("sampled_at", moment),
            ("test", _coded(pa.int8())),
            ("result", _coded(pa.int8())),
            ("area", _coded(pa.int16())),
            ("level", _coded(pa.int8())),
            ("geometry", _coded(pa.int16())),
            ("valid_until", moment),
        ]
    )


COLUMNS = _schema("ms").names
REQUIRED = ("event_id", "type", "ts", "person", "lat", "lon", "source")
OPTIONAL = tuple(name for name in COLUMNS if name not in REQUIRED)

pseudonyms = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=64)
printable = st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp", "Co", "Cs"))
event_ids = st.one_of(st.text(printable, min_size=1, max_size=8), st.text(alphabet="事件é-x", min_size=60, max_size=64))
times_ms = st.one_of(st.integers(min_value=T0 - 10**12, max_value=T0 + 10**12), st.integers(-(10**12), 10**12))
latitudes = st.one_of(st.sampled_from([-90.0, 90.0, -0.0]), st.floats(min_value=-90, max_value=90))
longitudes = st.one_of(st.sampled_from([-180.0, 180.0]), st.floats(min_value=-180, max_value=180))
accuracies = st.one_of(st.none(), st.sampled_from([0.0, 100_000.0]), st.floats(min_value=0, max_value=100_000))


@st.composite
def valid_pings(draw) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(
        event_id=draw(event_ids),
        type="ping",
        ts=draw(times_ms),
        person=draw(pseudonyms),
        lat=draw(latitudes),
        lon=draw(longitudes),
        accuracy_m=draw(accuracies),
        source=draw(st.sampled_from(["cell", "gps", "venue"])),
    )
    return row


NOT_A_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf])
BREAKAGES: dict[str, st.SearchStrategy] = {
    "lat": st.one_of(NOT_A_NUMBER, st.floats(min_value=90, exclude_min=True, allow_infinity=False),
                     st.floats(max_value=-90, exclude_max=True, allow_infinity=False), st.none()),
    "lon": st.one_of(NOT_A_NUMBER, st.floats(min_value=180, exclude_min=True, allow_infinity=False),
                     st.floats(max_value=-180, exclude_max=True, allow_infinity=False), st.none()),
    "person": st.one_of(
        st.sampled_from(["", "a b", "a.b", "ä", "abc\n", "x" * 65, None]),
        st.text(min_size=1, max_size=70),
    ),
    "event_id": st.sampled_from(["", "x" * 65, "事" * 65, None, "a\x00", "\x1f", "a\u200bb", "\ufeff", "a\u2028", "\ue000"]),
    "source": st.sampled_from(["wifi", "GPS", "", " gps", None]),
    "accuracy_m": st.one_of(NOT_A_NUMBER, st.floats(max_value=0, exclude_max=True, allow_infinity=False),
                            st.floats(min_value=100_000, exclude_min=True, allow_infinity=False)),
    "ts": st.none(),
    "type": st.sampled_from(["visit", "test_result", "area_risk", "Ping", "", None]),
    "facility": st.just("Clinic"),
    "kind": st.just("fever_clinic"),
    "sampled_at": times_ms,
    "test": st.just("pcr"),
    "result": st.just("positive"),
    "area": st.just("Downtown"),
    "level": st.just("high"),
    "geometry": st.just(SQUARE),
    "valid_until": times_ms,
}


@st.composite
def broken_pings(draw) -> dict:
    row = draw(valid_pings())
    field = draw(st.sampled_from(sorted(BREAKAGES)))
    row[field] = draw(BREAKAGES[field])
    return row


@st.composite
def other_events(draw) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(event_id=draw(event_ids), ts=draw(times_ms))
    kind = draw(st.sampled_from(["visit", "test_result", "area_risk"]))
    if kind == "visit":
        row.update(type=kind, person=draw(pseudonyms), facility="Clinic", kind="diagnosis")
    elif kind == "test_result":
        row.update(type=kind, person=draw(pseudonyms), sampled_at=row["ts"] - 3_600_000, test="pcr", result="negative")
    else:
        row.update(type=kind, area="Downtown", level="high", geometry=SQUARE)
    return row


rows = st.lists(
    st.one_of(
        valid_pings().map(lambda row: (row, True)),
        broken_pings().map(lambda row: (row, False)),
        other_events().map(lambda row: (row, False)),
    ),
    min_size=1,
    max_size=25,
)


def _batch(drawn: list[dict], time_unit: str, zone: str | None, dropped: set[str], dictionaries: bool = True) -> pa.RecordBatch:
    """The rows as a batch of the simulator's schema, without the `dropped` optional columns."""
    schema = _schema(time_unit, zone, dictionaries)
    scale = {"s": 1000, "ms": 1}[time_unit]
    arrays = []
    for field in schema:
        values = [row[field.name] for row in drawn]
        if pa.types.is_timestamp(field.type):
            seconds = [None if value is None else value // scale for value in values]
            arrays.append(pa.array(seconds, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return batch.select([name for name in COLUMNS if name not in dropped])


def _model(record: dict) -> Ping | None:
    """The ping the contract reads from a Parquet row (absent fields are null columns), if any."""
    try:
        event = decode_event(orjson.dumps({key: value for key, value in record.items() if value is not None}))
    except EventError:
        return None
    return event if isinstance(event, Ping) else None


def _check(batch: pa.RecordBatch, built_valid: list[bool]) -> None:
    ok, ts, event_id = ping_rows(batch)
    roster = Roster()
    codes, read_ts, lat, lon = ping_columns(batch, np.flatnonzero(ok), PersonCoder(roster))
    person = [roster.names[code] for code in codes.tolist()]
    assert read_ts.tolist() == ts.tolist()
    models = [_model(record) for record in batch.to_pylist()]
    for row, (accepted, model, valid) in enumerate(zip(ok.tolist(), models, built_valid)):
        shown = batch.slice(row, 1).to_pylist()
        if accepted:
            assert model is not None, f"row {row} accepted column-wise but the contract rejects it: {shown}"
        if valid:
            assert model is not None, f"row {row} was built as a valid ping: {shown}"
            assert accepted, f"valid ping at row {row} rejected column-wise: {shown}"
    accepted_models = [model for model, accepted in zip(models, ok.tolist()) if accepted]
    assert person == [model.person for model in accepted_models]
    assert ts.tolist() == [to_epoch(model.ts) for model in accepted_models]
    assert lat.tolist() == [model.lat for model in accepted_models]
    assert lon.tolist() == [model.lon for model in accepted_models]
    assert event_id.tolist() == [model.event_id for model in accepted_models]


checked = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
briefly = settings(checked, max_examples=100)


@checked
@given(rows, st.sampled_from(["s", "ms"]), st.sets(st.sampled_from(OPTIONAL)))
def test_ping_rows_accepts_every_valid_ping_and_only_rows_the_contract_reads_as_pings(drawn, time_unit, dropped) -> None:
    _check(_batch([row for row, _ in drawn], time_unit, "UTC", dropped), [valid for _, valid in drawn])


@briefly
@given(rows, st.sets(st.sampled_from(OPTIONAL)))
def test_ping_rows_holds_for_plain_string_columns_too(drawn, dropped) -> None:
    _check(_batch([row for row, _ in drawn], "ms", "UTC", dropped, dictionaries=False), [valid for _, valid in drawn])


@briefly
@given(rows, st.sampled_from(["+08:00", "Asia/Shanghai", "America/New_York"]))
def test_ping_rows_reads_times_in_any_zone_as_the_same_epoch_seconds(drawn, zone) -> None:
    _check(_batch([row for row, _ in drawn], "ms", zone, set()), [valid for _, valid in drawn])


@briefly
@given(rows)
def test_ping_rows_rejects_every_row_when_times_carry_no_zone(drawn) -> None:
    batch = _batch([row for row, _ in drawn], "ms", None, set())
    assert not ping_rows(batch)[0].any()
