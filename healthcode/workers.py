"""Worker processes: `healthcode worker` started, watched through its web port, and stopped.

The demo and the tests run workers as real processes, as production does, so that a
busy worker cannot starve another's group heartbeat and a SIGKILL is a real crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import Request, urlopen

import orjson
from prometheus_client.parser import text_string_to_metric_families

from healthcode.broker import free_port
from healthcode.errors import EnvironmentProblem
from streams.parentdeath import stop_with_parent

LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Metrics:
    """A worker's `/metrics` at one moment: each sample's value by its name and labels."""

    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        """Read Prometheus' text format (what `/metrics` answers)."""
        return cls({
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
        })

    def value(self, name: str, default: float = 0.0, **labels: str) -> float:
        """The sample `name` with exactly these labels, or `default` when the worker has none."""
        return self.samples.get((name, frozenset(labels.items())), default)

    def total(self, name: str) -> float:
        """The sum of `name` over every label set (all event types, say)."""
        return sum(value for (sample, _), value in self.samples.items() if sample == name)


class WorkerExited(EnvironmentProblem):
    """A worker process ended while it was waited on: its exit code and the end of its log say why."""


class WorkerProcess:
    """One `healthcode worker` process with the given `HEALTHCODE_*` settings."""

    def __init__(self, settings: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.started = time.monotonic()
        env = {**os.environ, **settings}
        with open(log, "ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "healthcode.cli.main", "worker", "--web-port", str(self.port)],
                env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=stop_with_parent,
            )

    def status(self) -> dict[str, Any] | None:
        """The worker's /healthz answer, or None while it does not answer."""
        try:
            with urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return orjson.loads(answer.read())
        except (URLError, OSError, ValueError) as error:
            body = getattr(error, "read", None)
            return orjson.loads(body()) if callable(body) else None

    def metrics(self) -> Metrics:
        """The worker's `/metrics` now (raises `URLError` while it does not answer)."""
        with urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
            return Metrics.parse(answer.read().decode())

    def resident_code(self, person: str, token: str) -> dict[str, Any]:
        """`person`'s current code, asked of this worker with their token (it forwards to the owner)."""
        request = Request(f"http://127.0.0.1:{self.port}/residents/{person}/code",
                          headers={"Authorization": f"Bearer {token}"})
        with urlopen(request, timeout=10) as answer:
            return orjson.loads(answer.read())

    def log_tail(self) -> str:
        """The last `LOG_TAIL_CHARS` characters of the worker's log."""
        try:
            return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError as error:
            return f"(its log {self.log} cannot be read: {error.strerror})"

    def check_running(self) -> None:
        """Raise `WorkerExited` if the process has ended."""
        code = self.process.poll()
        if code is not None:
            raise WorkerExited(
                f"worker process {self.process.pid} (log {self.log}) exited with code {code} "
                f"{time.monotonic() - self.started:.1f} s after it started; its log ends:\n{self.log_tail()}"
            )

    def kill(self) -> None:
        """SIGKILL: a crash, with nothing cleaned up."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(workers: list[WorkerProcess], done: Any, timeout: float, what: str) -> list[dict[str, Any]]:
    """Poll the workers' status until `done(statuses)` holds.

    Raises `WorkerExited` as soon as one of them has ended (waiting on would only end in
    the timeout), TimeoutError with their logs when `done` does not hold in time.
    """
    deadline = time.monotonic() + timeout
    states: list[Any] = []
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_running()
        states = [worker.status() for worker in workers]
        if all(state is not None for state in states) and done(states):
            return states
        time.sleep(0.5)
    logs = "\n".join(worker.log_tail() for worker in workers)
    raise TimeoutError(f"workers did not {what} within {timeout:.0f} s: {states}\n{logs}")


def settled(states: list[dict[str, Any]], partitions: int, through: str) -> bool:
    """Every partition owned by a ready worker, and each owner settled through `through` (RFC 3339)."""
    owned = sorted(p for state in states if state["ready"] for p in state["partitions"])
    return owned == list(range(partitions)) and all(
        state["settled_through"] is not None and state["settled_through"] >= through
        for state in states if state["partitions"]
    )
