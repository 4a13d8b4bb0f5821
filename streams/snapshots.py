"""Snapshots of a stage's state with the input offsets it covers, so recovery replays only what follows.

A snapshot is one file: a format version, a checksum, a JSON header (per partition the
offset of the next record to read and a digest of the record just before it, what
made the state, when) and the state's bytes. The store writes it atomically (temporary
file, then `os.replace`), readable by its owner only, and keeps the latest `KEEP`.
Which state the bytes hold is the caller's business (`streams.resume` for a `Step`).

Whether a snapshot can be resumed from is decided here, purely, from what the broker
holds now (`LogFacts`): the state must have been made by the same configuration and
software, and every partition must still hold what the snapshot read. The broker's
reported end offsets cannot vouch for that: the embedded broker under-reports them
after batched produce (../shared/FAUST-ON-TANSU.md), so a partition's end is vouched by
fetching the record just before the snapshot's offset, and that record's digest must be
the one the snapshot noted (a topic created again, or a broker that lost its data, holds
something else there, or nothing). Anything else, a file cut short, another format, a
checksum that does not match, is a reason to rebuild from the start, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Source = tuple[str, int]
"""A partition: (topic, partition)."""

FORMAT_VERSION = 1
MAGIC = b"HCSNAP\r\n"
_HEAD = struct.Struct(">8sII32s")
"""Magic, format version, header length, SHA-256 of header and state."""
KEEP = 2
"""Snapshots kept per stage and partition set: the latest may turn out unusable (its
partitions' records gone), the one before may still do."""
_NAME = re.compile(r"snapshot-(\d{8})\.bin")


class Unusable(Exception):
    """A snapshot that cannot be resumed from; the message says precisely why."""


@dataclass(frozen=True)
class Snapshot:
    """A stage's state and the partition offsets it covers."""

    offsets: dict[Source, int]
    """Per partition read: the offset of the next record to read after the state."""
    tails: dict[Source, str]
    """Per partition: the digest (`digest`) of the record just before its offset; absent
    when the snapshot read nothing of it."""
    made_by: str
    """The configuration and software that made the state (`made_by`): another cannot use it."""
    taken_at: float
    """Wall clock, epoch seconds."""
    state: bytes


def digest(key: bytes | None, value: bytes | None) -> str:
    """What identifies a record at an offset: its key and value (not the timestamp a broker may set)."""
    hashed = hashlib.blake2b(digest_size=16)
    for part in (key, value):
        hashed.update(b"-" if part is None else b"+" + struct.pack(">I", len(part)) + part)
    return hashed.hexdigest()


def made_by(settings: Mapping[str, Any], sources: list[Path]) -> str:
    """A digest of what made a state: `settings` (JSON-able) and the text of the `sources` files."""
    hashed = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(sources):
        hashed.update(path.name.encode() + b"\0" + path.read_bytes())
    return hashed.hexdigest()[:32]


def _label(source: Source) -> str:
    return f"{source[0]}[{source[1]}]"


def encode(snapshot: Snapshot) -> bytes:
    """The file's bytes."""
    header = json.dumps({
        "offsets": [[topic, partition, offset] for (topic, partition), offset in sorted(snapshot.offsets.items())],
        "tails": [[topic, partition, tail] for (topic, partition), tail in sorted(snapshot.tails.items())],
        "made_by": snapshot.made_by, "taken_at": snapshot.taken_at,
    }).encode()
    checksum = hashlib.sha256(header + snapshot.state).digest()
    return _HEAD.pack(MAGIC, FORMAT_VERSION, len(header), checksum) + header + snapshot.state


def decode(data: bytes) -> Snapshot:
    """The snapshot a file holds; `Unusable` saying why it holds none."""
    if len(data) < _HEAD.size:
        raise Unusable(f"cut short: {len(data)} bytes, not even a header")
    magic, version, length, checksum = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise Unusable("not a snapshot file")
    if version != FORMAT_VERSION:
        raise Unusable(f"format version {version}, this worker reads {FORMAT_VERSION}")
    body = data[_HEAD.size:]
    if len(body) < length:
        raise Unusable(f"cut short: a {length}-byte header, {len(body)} bytes follow")
    if hashlib.sha256(body).digest() != checksum:
        raise Unusable("checksum mismatch (cut short or altered)")
    try:
        header = json.loads(body[:length])
        return Snapshot(
            offsets={(str(t), int(p)): int(o) for t, p, o in header["offsets"]},
            tails={(str(t), int(p)): str(d) for t, p, d in header["tails"]},
            made_by=str(header["made_by"]), taken_at=float(header["taken_at"]), state=body[length:],
        )
    except (ValueError, TypeError, KeyError) as error:
        raise Unusable(f"header unreadable: {error}") from None


@dataclass(frozen=True)
class LogFacts:
    """What the broker holds of one partition now."""

    start: int
    """The offset of its first record (retention deletes from the start)."""
    end: int
    """Its end as far as vouched: the reported end offset, or after a record fetched there if later."""
    tail: str | None
    """The digest of the record at the snapshot's offset minus one (None: no record there)."""


def unusable(snapshot: Snapshot, made: str, logs: Mapping[Source, LogFacts]) -> str | None:
    """Why `snapshot` cannot be resumed from, with `made` the `made_by` of the worker now and
    `logs` what the broker holds of each partition it read (a partition absent: no such
    partition); None when it can: every offset still within its log, after the same record."""
    if snapshot.made_by != made:
        return "made by another configuration or software version"
    for source, offset in sorted(snapshot.offsets.items()):
        facts = logs.get(source)
        if facts is None:
            return f"{_label(source)} is missing (topic deleted?)"
        if offset < facts.start:
            return f"{_label(source)} starts at offset {facts.start}, after the snapshot's {offset}: records deleted"
        if offset > facts.end:
            return f"{_label(source)} ends at offset {facts.end}, before the snapshot's {offset} (data lost?)"
        tail = snapshot.tails.get(source)
        if offset > facts.start and tail is None:
            return f"{_label(source)}: the snapshot does not say which record precedes offset {offset}"
        if tail is not None and facts.tail != tail:
            return (f"{_label(source)}: the record before offset {offset} is not the one the snapshot read "
                    "(topic created again?)")
    return None


class SnapshotStore:
    """The snapshots of one stage and partition set, in a directory only this user may read.

    Pickled state is loaded from here (`streams.resume`), so the directory is ours alone
    (0700) and its files 0600: nobody else can plant a file to be unpickled.
    """

    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = directory
        self.keep = keep

    def _numbered(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), path) for path in self.directory.iterdir() if (m := _NAME.fullmatch(path.name))]
        return sorted(found, reverse=True)

    def newest_first(self) -> list[Path]:
        """The snapshot files, the latest first."""
        return [path for _, path in self._numbered()]

    def write(self, snapshot: Snapshot) -> Path:
        """Write `snapshot` as the latest (atomically, flushed to disk) and drop all but the latest `keep`."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        numbered = self._numbered()
        path = self.directory / f"snapshot-{(numbered[0][0] + 1 if numbered else 1):08d}.bin"
        handle, partial = tempfile.mkstemp(dir=self.directory, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as sink:  # mkstemp makes it 0600
                sink.write(encode(snapshot))
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        for _, old in self._numbered()[self.keep:]:
            old.unlink(missing_ok=True)
        return path

    def load(self, path: Path) -> Snapshot:
        """The snapshot in `path`; `Unusable` if it cannot be read or holds none."""
        try:
            if path.stat().st_mode & 0o077:
                raise Unusable(f"{path.name} is readable or writable by others: not loaded")
            return decode(path.read_bytes())
        except OSError as error:
            raise Unusable(f"cannot read {path.name}: {error.strerror}") from None
