"""Writing a run to a directory: events (JSONL or Parquet), faults, truth and the city.

- `events.jsonl`: one contract-v1 JSON object per line, in arrival order;
  `events.parquet` instead with `--format parquet`: one column per contract field
  (nulls where an event type lacks the field; times as timestamp[s, UTC];
  `geometry` as GeoJSON text), rows in arrival order.
- `faults.jsonl`: one line per injected fault: `line` (1-based line of the events
  file, or 1-based row of the Parquet file), `kind`, `event_id` (the id of the event
  the faulty line was made from; a malformed line may not show it).
- `truth.parquet`: see `truth.TRUTH_COLUMNS`.
- `city.json`: the map (box, districts as GeoJSON, hospitals), period and summary.

Every file of a run names its city (`Simulation.identity`): the Parquet files in their
schema metadata under `RUN_METADATA_KEY`, city.json under `run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulators.corrupt import CORRUPTIONS
from simulators.faults import FAULT_CODES, fault_name
from simulators.frames import NO_FAULT
from simulators.render import Renderer
from simulators.rng import generator
from simulators.run import Block, Observer, Simulation
from simulators.truth import city_document, truth_table

EVENTS_JSONL = "events.jsonl"
EVENTS_PARQUET = "events.parquet"
FAULTS = "faults.jsonl"
TRUTH = "truth.parquet"
CITY = "city.json"
RUN_METADATA_KEY = b"healthcode.run"
CHUNK_ROWS = 1_000_000
"""Rows per Parquet row group and per chunk of rendered lines: bounds the memory a block needs."""


def faulty_lines(lines: pa.Array, fault: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """The lines with content faults applied where `fault` marks them."""
    rows = np.flatnonzero(np.isin(fault, [FAULT_CODES[kind] for kind in CORRUPTIONS]))
    if rows.size == 0:
        return lines
    originals = lines.take(pa.array(rows)).to_pylist()
    broken = [CORRUPTIONS[fault_name(int(fault[row]))](text, rng) for row, text in zip(rows, originals)]
    mask = np.zeros(len(lines), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(lines, pa.array(mask), pa.array(broken, type=lines.type))


def write_strings(sink: BinaryIO, lines: pa.Array) -> None:
    """Write a string array's characters back to back (each line carries its newline)."""
    lines = lines.cast(pa.large_string())
    if len(lines) == 0:
        return
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    sink.write(memoryview(data)[int(bounds[0]) : int(bounds[-1])])


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """The events Parquet writer: snappy, dictionaries only where values repeat, and
    statistics only on `ts` (string statistics on event ids cost more than they give)."""
    return pq.ParquetWriter(
        path,
        schema,
        compression="snappy",
        use_dictionary=list(Renderer.DICTIONARY_COLUMNS),
        write_statistics=["ts"],
    )


class EventFiles:
    """The events file (JSONL or Parquet) and the faults file of one run, written block by block."""

    def __init__(
        self, directory: Path, renderer: Renderer, seed: int, parquet: bool, metadata: dict[bytes, bytes] | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.seed = seed
        self.path = directory / (EVENTS_PARQUET if parquet else EVENTS_JSONL)
        self._faults = (directory / FAULTS).open("wb")
        self._rows_written = 0
        self._jsonl: BinaryIO | None = None if parquet else self.path.open("wb")
        self._parquet = parquet_writer(self.path, renderer.schema().with_metadata(metadata or {})) if parquet else None

    def lines(self, block: Block) -> Iterator[pa.Array]:
        """The block's JSON lines in chunks, content faults applied."""
        rng = generator(self.seed, "faults", block.index, 3)
        done = 0
        for chunk in self.renderer.lines(block.events, CHUNK_ROWS):
            yield faulty_lines(chunk, block.fault[done : done + len(chunk)], rng)
            done += len(chunk)

    def write(self, block: Block, also: Callable[[pa.Array], None] | None = None) -> None:
        """Append a block; `also` receives each chunk of JSON lines too (to publish them)."""
        if self._jsonl is not None:
            for chunk in self.lines(block):
                write_strings(self._jsonl, chunk)
                if also is not None:
                    also(chunk)
        else:
            assert self._parquet is not None
            for table in self.renderer.tables(block.events, CHUNK_ROWS):
                self._parquet.write_table(table)
            if also is not None:
                for chunk in self.lines(block):
                    also(chunk)
        self._record_faults(block)
        self._rows_written += len(block.events)

    def _record_faults(self, block: Block) -> None:
        rows = np.flatnonzero(block.fault != NO_FAULT)
        if rows.size == 0:
            return
        events = block.events
        serials = np.concatenate([events.pings["serial"], events.records["serial"]])[events.order][rows]
        for row, serial in zip(rows.tolist(), self.renderer.event_ids(serials)):
            entry = {
                "line": self._rows_written + row + 1,
                "kind": fault_name(int(block.fault[row])),
                "event_id": serial,
            }
            self._faults.write(orjson.dumps(entry) + b"\n")

    def close(self) -> None:
        """Finish both files."""
        if self._jsonl is not None:
            self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()
        self._faults.close()


def write_json(path: Path, document: dict[str, object]) -> None:
    """A JSON document, indented for people to read."""
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def write_truth(path: Path, table: pa.Table) -> None:
    """The ground-truth table."""
    pq.write_table(table, path, compression="zstd")


def write_run(
    simulation: Simulation,
    directory: Path,
    parquet: bool = False,
    also: Callable[[pa.Array], None] | None = None,
    after_block: Callable[[Block], None] | None = None,
    observe: Observer | None = None,
) -> Path:
    """Run `simulation` and write everything it produces to `directory`; returns the
    events file. `also` gets every chunk of JSON lines (to publish), `after_block`
    each block once written (to show progress), `observe` each slot's locations."""
    identity = simulation.identity()
    metadata = {RUN_METADATA_KEY: orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)}
    files = EventFiles(directory, Renderer(simulation.city, simulation.config.seed), simulation.config.seed, parquet, metadata)
    try:
        for block in simulation.blocks(observe):
            files.write(block, also)
            if after_block is not None:
                after_block(block)
    finally:
        files.close()
    write_truth(directory / TRUTH, truth_table(simulation).replace_schema_metadata(metadata))
    write_json(directory / CITY, {**city_document(simulation), "run": identity})
    return files.path
