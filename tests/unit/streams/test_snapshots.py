"""Snapshot files and whether one may be resumed from: every unusable one is a precise reason to rebuild."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from streams.resume import store_directory
from streams.snapshots import (
    FORMAT_VERSION, LogFacts, Snapshot, SnapshotStore, Unusable, decode, digest, encode, unusable,
)

PINGS, CODES = ("t.pings", 0), ("t.codes", 1)
TAIL = digest(b"p-1", b'{"type":"ping"}')
SNAPSHOT = Snapshot(offsets={PINGS: 120, CODES: 0}, tails={PINGS: TAIL}, made_by="m1", taken_at=1.7e9,
                    state=b"\x00state\xff" * 10)
HOLDING = {PINGS: LogFacts(start=0, end=150, tail=TAIL), CODES: LogFacts(start=0, end=0, tail=None)}


def test_a_snapshot_reads_back_as_written() -> None:
    assert decode(encode(SNAPSHOT)) == SNAPSHOT


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:10], "cut short: 10 bytes, not even a header"),
    (lambda data: data[:60], "cut short: a"),
    (lambda data: data[:-1], "checksum mismatch"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "checksum mismatch"),
    (lambda data: b"PK\x03\x04" + data[4:], "not a snapshot file"),
    (lambda data: data[:8] + struct.pack(">I", FORMAT_VERSION + 1) + data[12:],
     f"format version {FORMAT_VERSION + 1}, this worker reads {FORMAT_VERSION}"),
])
def test_a_damaged_file_is_unusable_with_a_precise_reason(damage, reason: str) -> None:
    with pytest.raises(Unusable, match="^" + reason.replace("(", r"\(")):
        decode(damage(encode(SNAPSHOT)))


def test_a_snapshot_whose_partitions_still_hold_what_it_read_is_usable() -> None:
    assert unusable(SNAPSHOT, "m1", HOLDING) is None
    # The broker's reported end may lag (the end-offset fault): the record fetched before the offset vouches.
    assert unusable(SNAPSHOT, "m1", {**HOLDING, PINGS: LogFacts(0, 120, TAIL)}) is None


@pytest.mark.parametrize("logs, made, reason", [
    (HOLDING, "m2", "made by another configuration or software version"),
    ({CODES: HOLDING[CODES]}, "m1", "t.pings[0] is missing (topic deleted?)"),
    ({**HOLDING, PINGS: LogFacts(0, 80, None)}, "m1", "t.pings[0] ends at offset 80, before the snapshot's 120"),
    ({**HOLDING, PINGS: LogFacts(130, 150, None)}, "m1", "t.pings[0] starts at offset 130, after the snapshot's 120"),
    ({**HOLDING, PINGS: LogFacts(0, 150, digest(b"p-2", b"other"))}, "m1",
     "t.pings[0]: the record before offset 120 is not the one the snapshot read (topic created again?)"),
    ({**HOLDING, PINGS: LogFacts(0, 150, None)}, "m1",
     "t.pings[0]: the record before offset 120 is not the one the snapshot read"),
])
def test_a_snapshot_the_broker_no_longer_backs_is_unusable_with_a_precise_reason(logs, made: str, reason: str) -> None:
    found = unusable(SNAPSHOT, made, logs)
    assert found is not None and found.startswith(reason)


def test_a_snapshot_that_does_not_say_what_preceded_its_offset_is_unusable() -> None:
    untailed = Snapshot({PINGS: 120}, {}, "m1", 0.0, b"")
    assert unusable(untailed, "m1", HOLDING) == "t.pings[0]: the snapshot does not say which record precedes offset 120"


def test_the_store_keeps_the_latest_two_readable_by_their_owner_only(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots" / "worker-p0")
    written = [store.write(Snapshot({PINGS: n}, {}, "m1", float(n), b"s")) for n in range(3)]
    assert store.newest_first() == [written[2], written[1]]
    assert store.load(store.newest_first()[0]).offsets == {PINGS: 2}
    assert store.directory.stat().st_mode & 0o777 == 0o700 and written[2].stat().st_mode & 0o777 == 0o600
    assert [path.name for path in store.directory.iterdir() if path.name.startswith(".")] == []


def test_the_store_refuses_a_file_others_could_have_written_and_says_why(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    path = store.write(SNAPSHOT)
    path.chmod(0o664)
    with pytest.raises(Unusable, match=f"^{path.name} is readable or writable by others: not loaded$"):
        store.load(path)
    path.unlink()
    with pytest.raises(Unusable, match=f"^cannot read {path.name}: No such file or directory$"):
        store.load(path)


def test_a_worker_owning_many_partitions_keeps_its_snapshots_in_a_directory_it_can_name(tmp_path: Path) -> None:
    # A file name has at most 255 bytes: "worker-p0.1.2....99" has 297.
    many, others = frozenset(range(100)), frozenset(range(1, 101))
    store = SnapshotStore(store_directory(tmp_path, "g", many))
    assert store.newest_first() == []
    written = store.write(SNAPSHOT)
    assert store.newest_first() == [written] and store.load(written) == SNAPSHOT
    assert store_directory(tmp_path, "g", others) != store.directory
    assert store_directory(tmp_path, "g", frozenset({0, 1, 3})).name == "worker-p0.1.3"
