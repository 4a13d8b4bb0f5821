"""A worker's status file: replaced atomically, whoever else writes in the same directory at the same time."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import orjson

from streams.app import write_status

WRITES = 500


def _write_many(path: str, writer: int) -> None:
    for n in range(WRITES):
        write_status(Path(path), orjson.dumps({"writer": writer, "n": n, "pad": "x" * 512}))


def test_two_processes_replacing_one_status_file_never_fail_and_leave_a_whole_file(tmp_path: Path) -> None:
    # Two workers once wrote one file through one temporary name: one of them died of
    # FileNotFoundError when the other had just renamed it away.
    path = tmp_path / "worker.json"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(str(path), n)) for n in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert [writer.exitcode for writer in writers] == [0, 0]
    last = orjson.loads(path.read_bytes())
    assert last["n"] == WRITES - 1 and last["writer"] in (0, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["worker.json"], "a temporary file was left behind"


def test_a_status_file_that_cannot_be_written_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a-directory.json"
    target.mkdir()
    try:
        write_status(target, b"{}")
    except OSError:
        pass
    else:
        raise AssertionError("replacing a directory with a file must fail")
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory.json"]
