"""Turning arrived frames into contract-v1 text (JSONL) or an Arrow table (Parquet).

Pings, the bulk, are rendered column-wise with Arrow string kernels (no Python
object per event); the few records go through orjson one by one. Every string
value comes from a vocabulary rendered once, through orjson, so escaping is right.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from scoring.timeutil import format_rfc3339
from simulators.arrival import Arrived
from simulators.city import City, pseudonyms
from simulators.frames import (
    AREA_RISK,
    LEVELS,
    PING,
    RESULTS,
    SOURCES,
    TEST_RESULT,
    TESTS,
    TYPES,
    VISIT,
    VISIT_KINDS,
    size,
)

_DAY = 86_400
_TIME_OF_DAY = pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(_DAY)])
UTC_SECONDS = pa.timestamp("s", tz="UTC")


def _dictionary(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


class Renderer:
    """Vocabularies of one city and run, and the two ways of writing events out."""

    def __init__(self, city: City, seed: int) -> None:
        self.people = pseudonyms(city.residents)
        self.facilities = list(city.hospital_names)
        self.areas = [d.id for d in city.districts]
        self.geometries = [orjson.dumps(d.geometry()).decode() for d in city.districts]
        self._geometry_objects = [d.geometry() for d in city.districts]
        self.id_prefix = f"e{seed}-"
        self._people_json = _dictionary([orjson.dumps(p).decode() for p in self.people])
        self._people = _dictionary(self.people)

    # --- shared -----------------------------------------------------------

    def event_ids(self, serials: np.ndarray) -> list[str]:
        """Event ids of serial numbers (deterministic, unique within a run)."""
        return [f"{self.id_prefix}{s}" for s in serials.tolist()]

    def _id_array(self, serials: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(self.id_prefix, pc.cast(pa.array(serials), pa.string()), "")

    # --- JSON lines -------------------------------------------------------

    def _ping_lines(self, pings: dict[str, np.ndarray]) -> pa.Array:
        ts = pings["ts"]
        days = ts // _DAY
        first = int(days.min()) if ts.size else 0
        dates = pa.array(
            [format_rfc3339(int(d) * _DAY)[:10] for d in range(first, int(days.max()) + 1)] if ts.size else [],
            pa.string(),
        )
        stamp = pc.binary_join_element_wise(
            '"', dates.take(pa.array(days - first)), "T", _TIME_OF_DAY.take(pa.array(ts % _DAY)), 'Z"', ""
        )
        accuracy = pa.array(pings["accuracy_m"], from_pandas=True)
        sources = _dictionary([orjson.dumps(s).decode() for s in SOURCES])
        return pc.binary_join_element_wise(
            '{"event_id":"',
            self._id_array(pings["serial"]),
            '","type":"ping","ts":',
            stamp,
            ',"person":',
            self._people_json.take(pa.array(pings["person"])),
            ',"lat":',
            pc.cast(pa.array(pings["lat"]), pa.string()),
            ',"lon":',
            pc.cast(pa.array(pings["lon"]), pa.string()),
            pc.binary_join_element_wise(',"accuracy_m":', pc.cast(accuracy, pa.string()), ""),
            ',"source":',
            sources.take(pa.array(pings["source"])),
            "}\n",
            "",
            null_handling="replace",
            null_replacement="",
        )

    def record_objects(self, records: dict[str, np.ndarray]) -> list[dict[str, object]]:
        """Each record as a contract-v1 JSON object (times as RFC 3339 text)."""
        objects = []
        ids = self.event_ids(records["serial"])
        columns = {name: column.tolist() for name, column in records.items()}
        for row, event_id in enumerate(ids):
            kind = columns["type"][row]
            event: dict[str, object] = {
                "event_id": event_id,
                "type": TYPES[kind],
                "ts": format_rfc3339(columns["ts"][row]),
            }
            if kind == AREA_RISK:
                area = columns["area"][row]
                event.update(
                    area=self.areas[area], level=LEVELS[columns["level"][row]], geometry=self._geometry_objects[area]
                )
                if columns["valid_until"][row] >= 0:
                    event["valid_until"] = format_rfc3339(columns["valid_until"][row])
            else:
                event["person"] = self.people[columns["person"][row]]
            if kind == VISIT:
                event.update(facility=self.facilities[columns["facility"][row]], kind=VISIT_KINDS[columns["kind"][row]])
            elif kind == TEST_RESULT:
                event.update(
                    sampled_at=format_rfc3339(columns["sampled_at"][row]),
                    test=TESTS[columns["test"][row]],
                    result=RESULTS[columns["result"][row]],
                )
            objects.append(event)
        return objects

    def lines(self, arrived: Arrived, rows: int) -> Iterator[pa.Array]:
        """One JSON line (ending in a newline) per event, in arrival order, in chunks of
        at most `rows` lines (each chunk rendered on its own, to bound memory)."""
        record_lines = [orjson.dumps(obj).decode() + "\n" for obj in self.record_objects(arrived.records)]
        pings = size(arrived.pings)
        for start in range(0, len(arrived), rows):
            chunk = arrived.order[start : start + rows]
            from_pings = chunk < pings
            ping_rows = chunk[from_pings]
            rendered = self._ping_lines({name: column[ping_rows] for name, column in arrived.pings.items()})
            records = pa.array([record_lines[row - pings] for row in chunk[~from_pings].tolist()], pa.string())
            # interleave: the k-th ping row of the chunk is line k of `rendered`, the rest follow
            position = np.where(from_pings, np.cumsum(from_pings) - 1, ping_rows.size + np.cumsum(~from_pings) - 1)
            yield pa.concat_arrays([rendered, records]).take(pa.array(position)).cast(pa.large_string())

    # --- Arrow / Parquet --------------------------------------------------

    DICTIONARY_COLUMNS = ("type", "person", "source", "facility", "kind", "test", "result", "area", "level", "geometry")
    """Columns Parquet should dictionary-encode (the rest are near-unique per row)."""

    def schema(self) -> pa.Schema:
        """The Parquet schema: one column per contract-v1 field; geometry is GeoJSON text."""

        def coded(index: pa.DataType) -> pa.DataType:
            return pa.dictionary(index, pa.string())

        return pa.schema(
            [
                ("event_id", pa.string()),
                ("type", coded(pa.int8())),
                ("ts", UTC_SECONDS),
                ("person", coded(pa.int32())),
                ("lat", pa.float64()),
                ("lon", pa.float64()),
                ("accuracy_m", pa.float64()),
                ("source", coded(pa.int8())),
                ("facility", coded(pa.int16())),
                ("kind", coded(pa.int8())),
                ("sampled_at", UTC_SECONDS),
                ("test", coded(pa.int8())),
                ("result", coded(pa.int8())),
                ("area", coded(pa.int16())),
                ("level", coded(pa.int8())),
                ("geometry", coded(pa.int16())),
                ("valid_until", UTC_SECONDS),
            ]
        )

    def _coded(self, codes: np.ndarray, vocabulary: list[str] | pa.Array, index: pa.DataType) -> pa.Array:
        values = vocabulary if isinstance(vocabulary, pa.Array) else _dictionary(list(vocabulary))
        codes = np.asarray(codes)
        absent = codes < 0
        indices = pa.array(np.where(absent, 0, codes), index, mask=absent if absent.any() else None)
        return pa.DictionaryArray.from_arrays(indices, values)

    @staticmethod
    def _times(seconds: np.ndarray) -> pa.Array:
        return pa.array(seconds, pa.int64(), mask=seconds < 0).cast(UTC_SECONDS)

    def _table(self, arrived: Arrived, rows: np.ndarray) -> pa.Table:
        pings, records = arrived.pings, arrived.records
        from_pings = rows < size(pings)
        ping_rows, record_rows = rows[from_pings], rows[~from_pings] - size(pings)

        def column(name: str, absent: float | int, dtype: type) -> np.ndarray:
            values = np.empty(rows.size, dtype=dtype)
            values[from_pings] = pings[name][ping_rows] if name in pings else absent
            values[~from_pings] = records[name][record_rows] if name in records else absent
            return values

        types = np.where(from_pings, PING, column("type", -1, np.int8)).astype(np.int8)
        area = column("area", -1, np.int16)
        columns = {
            "event_id": self._id_array(column("serial", 0, np.int64)),
            "type": self._coded(types, list(TYPES), pa.int8()),
            "ts": self._times(column("ts", 0, np.int64)),
            "person": self._coded(column("person", -1, np.int32), self._people, pa.int32()),
            "lat": pa.array(column("lat", np.nan, np.float64), from_pandas=True),
            "lon": pa.array(column("lon", np.nan, np.float64), from_pandas=True),
            "accuracy_m": pa.array(column("accuracy_m", np.nan, np.float64), from_pandas=True),
            "source": self._coded(column("source", -1, np.int8), list(SOURCES), pa.int8()),
            "facility": self._coded(
                np.where(types == VISIT, column("facility", -1, np.int16), -1), self.facilities, pa.int16()
            ),
            "kind": self._coded(column("kind", -1, np.int8), list(VISIT_KINDS), pa.int8()),
            "sampled_at": self._times(column("sampled_at", -1, np.int64)),
            "test": self._coded(column("test", -1, np.int8), list(TESTS), pa.int8()),
            "result": self._coded(column("result", -1, np.int8), list(RESULTS), pa.int8()),
            "area": self._coded(area, self.areas, pa.int16()),
            "level": self._coded(column("level", -1, np.int8), list(LEVELS), pa.int8()),
            "geometry": self._coded(area, self.geometries, pa.int16()),
            "valid_until": self._times(column("valid_until", -1, np.int64)),
        }
        return pa.table(columns, schema=self.schema())

    def tables(self, arrived: Arrived, rows: int) -> Iterator[pa.Table]:
        """The arrived events as Arrow tables of at most `rows` rows, in arrival order
        (nulls where a type lacks a field)."""
        for start in range(0, len(arrived), rows):
            yield self._table(arrived, arrived.order[start : start + rows])
