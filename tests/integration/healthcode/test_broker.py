"""The embedded broker manager: starts for real, answers Kafka, stops with no orphan left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from healthcode.broker import EmbeddedBroker, free_port, metadata_answers
from healthcode.errors import EnvironmentProblem

HEALTHCODE = [sys.executable, "-m", "healthcode.cli.main"]


def _tansu_pids() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                status = (entry / "status").read_text()
            except OSError:
                continue
            if b"tansu" in cmdline and "State:\tZ" not in status:
                found.add(int(entry.name))
    return found


def test_two_brokers_run_side_by_side_and_both_stop(tmp_path: Path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as first, EmbeddedBroker(log_dir=tmp_path) as second:
        assert first.bootstrap != second.bootstrap
        assert metadata_answers(first.bootstrap) and metadata_answers(second.bootstrap)
        pids = {first.state.pid, second.state.pid}
        address = first.bootstrap
    assert not pids & _tansu_pids()
    assert not metadata_answers(address, timeout=0.5)


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(EnvironmentProblem, match=f"port {port} on 127.0.0.1 is already in use"):
            EmbeddedBroker(port=port, log_dir=tmp_path).start()


def test_a_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(EnvironmentProblem, match="binary is missing"):
        EmbeddedBroker(log_dir=tmp_path).start()


def test_the_broker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from healthcode.broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(log_dir={str(tmp_path)!r}); b.start()\n"
        "print(b.state.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    broker_pid = int(parent.stdout.readline())
    assert broker_pid in _tansu_pids()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while broker_pid in _tansu_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker_pid not in _tansu_pids()


def test_cli_start_status_stop(tmp_path: Path) -> None:
    env = {**os.environ, "HEALTHCODE_DATA_DIR": str(tmp_path)}
    port = free_port()
    started = subprocess.run([*HEALTHCODE, "broker", "start", "--port", str(port)], env=env,
                             capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        assert f"bootstrap: 127.0.0.1:{port}" in started.stdout
        assert f"HEALTHCODE_BROKER=kafka://127.0.0.1:{port}" in started.stdout
        again = subprocess.run([*HEALTHCODE, "broker", "start"], env=env, capture_output=True, text=True)
        assert again.returncode == 2 and "already running" in again.stderr
        status = subprocess.run([*HEALTHCODE, "broker", "status"], env=env, capture_output=True, text=True)
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout
    finally:
        stopped = subprocess.run([*HEALTHCODE, "broker", "stop"], env=env, capture_output=True, text=True)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = subprocess.run([*HEALTHCODE, "broker", "status"], env=env, capture_output=True, text=True)
    assert after.returncode == 1
    assert not metadata_answers(f"127.0.0.1:{port}", timeout=0.5)
