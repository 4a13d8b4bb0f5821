"""Worker processes as the demo and the tests run them: one that dies is reported at once, two share a data dir."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerExited, WorkerProcess, wait_until


def test_a_worker_process_that_exits_at_once_is_reported_with_its_exit_code_and_log_tail(tmp_path: Path) -> None:
    no_keys = tmp_path / "no-keys"
    no_keys.mkdir()
    settings = {"HEALTHCODE_CONFIG": "", "HEALTHCODE_BROKER": "kafka://127.0.0.1:9", "HEALTHCODE_KEY_DIR": str(no_keys)}
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        # Were the exit not noticed, this would wait the whole timeout and raise TimeoutError.
        with pytest.raises(WorkerExited) as exited:
            wait_until([worker], lambda states: True, 120, "start")
    finally:
        worker.stop()
    message = str(exited.value)
    assert "exited with code 2" in message
    assert f"no signing key in {no_keys}" in message, "the log tail says why"


def _announcements(directory: Path) -> dict[str, int]:
    """Per status file in `directory`: the time of the announcement it holds."""
    found = {}
    for path in directory.glob("worker-*.json"):
        try:
            found[path.name] = orjson.loads(path.read_bytes())["at"]
        except (OSError, ValueError):
            raise AssertionError(f"{path.name} is not a whole status file") from None
    return found


def test_two_workers_sharing_a_data_directory_both_stay_up_each_with_its_own_status_file(
    broker: EmbeddedBroker, published_city: Any, settings_for: Callable[..., dict[str, str]], key_dir: Path,
    tmp_path: Path, unique: str,
) -> None:
    settings = settings_for(broker.bootstrap, published_city.topics, f"g{unique}", key_dir)
    settings |= {"HEALTHCODE_CONFIG": "", "HEALTHCODE_DATA_DIR": str(tmp_path / "shared")}
    workers = [WorkerProcess(settings, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        wait_until(workers, lambda states: all(s["ready"] and s["partitions"] for s in states), 120, "share the partitions")
        # Each announces every 2 s: wait for several rounds of both, checking both stay up.
        seen: dict[str, set[int]] = {}
        deadline = time.monotonic() + 60
        while not (len(seen) == 2 and all(len(times) >= 4 for times in seen.values())):
            assert time.monotonic() < deadline, f"announcements seen: {seen}"
            for worker in workers:
                worker.check_running()
            for name, at in _announcements(tmp_path / "shared" / "workers").items():
                seen.setdefault(name, set()).add(at)
            time.sleep(0.2)
        for worker in workers:
            worker.check_running()
    finally:
        for worker in workers:
            worker.stop()
    assert [worker.process.returncode for worker in workers] == [0, 0]
    assert list((tmp_path / "shared" / "workers").iterdir()) == [], "a stopped worker removes its status file"
