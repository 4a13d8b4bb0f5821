"""A pool of jobs across the cores, as many at once as the machine's memory allows.

A backtest is many jobs (simulate a city, replay one rule set over one city, compare
one city's replays) with dependencies between them. They run in forked processes, each
job in a fresh one, so a job's memory is returned when it ends and a crash is its own.
How many run at once is decided before anything starts (`job_slots`, pure): the cores
asked for, fewer when the largest job's estimated peak times that many would not fit in
the memory available.

A failing job stops the run: the jobs still running are terminated and reaped, and its
`HealthcodeError` (a bad city file: one line, exit 2) is raised in the parent. Jobs
ignore Ctrl-C, which the parent takes for all of them; the kernel kills them if the
parent dies (`die_with_parent`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import psutil

from healthcode.errors import EnvironmentProblem, HealthcodeError
from streams.parentdeath import die_with_parent

MEMORY_SHARE = 0.8
"""Share of the memory available that jobs may plan on: the parent, the page cache and
the other users of a shared machine need the rest."""

STOP_GRACE_S = 5.0
"""How long a terminated job has to end before it is killed."""

Key = Hashable
Results = Mapping[Key, Any]


@dataclass(frozen=True)
class Job:
    """One unit of work: `run` gets the results of the jobs it `needs` (by key)."""

    key: Key
    run: Callable[[Results], Any]
    peak: int
    """Estimated peak memory of the process running it, in bytes."""
    needs: tuple[Key, ...] = ()
    what: str = ""
    """What it does, for messages ("replay points@1.0.0 on seed 8")."""


@dataclass(frozen=True)
class Slots:
    """How many jobs run at once and, when fewer than asked, why."""

    count: int
    reason: str | None = None


def job_slots(requested: int, peaks: Sequence[int], available: int) -> Slots:
    """Jobs to run at once: `requested`, but no more than there are jobs, and no more than
    fit in `MEMORY_SHARE` of `available` bytes at the largest job's peak (at least one:
    a job too large for the machine is still tried, and said to be)."""
    if requested < 1:
        raise ValueError(f"jobs at once must be at least 1, not {requested}")
    if not peaks:
        return Slots(1)
    largest = max(peaks)
    budget = int(available * MEMORY_SHARE)
    fitting = budget // largest
    wanted = min(requested, len(peaks))
    if fitting >= wanted:
        return Slots(wanted)
    count = max(1, fitting)
    need = f"the largest job may need {_gb(largest)}, and {MEMORY_SHARE:.0%} of the {_gb(available)} available is {_gb(budget)}"
    jobs = "1 job" if count == 1 else f"{count} jobs"
    return Slots(count, f"running {jobs} at a time, not {requested}: {need}" + ("; it may not fit" if fitting == 0 else ""))


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def available_memory() -> int:
    """Bytes the kernel says can be used without swapping (MemAvailable)."""
    return int(psutil.virtual_memory().available)


def cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


@dataclass
class _Running:
    job: Job
    process: multiprocessing.process.BaseProcess
    connection: Connection


@dataclass
class _Plan:
    jobs: list[Job]
    done: dict[Key, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [job.key for job in self.jobs]
        if len(set(keys)) != len(keys):
            raise ValueError("two jobs with the same key")
        known = set(keys)
        for position, job in enumerate(self.jobs):
            # A job needs only jobs before it: run in order, one at a time, everything it needs is done.
            if not set(job.needs) <= set(keys[:position]):
                missing = set(job.needs) - known
                raise ValueError(f"job {job.key!r} needs {missing or 'a later job'}")

    def next_ready(self, started: set[Key]) -> Job | None:
        """The first job not started whose needs are all done (jobs run in the order given)."""
        for job in self.jobs:
            if job.key not in started and all(need in self.done for need in job.needs):
                return job
        return None


def run_jobs(jobs: Sequence[Job], slots: int, finished: Callable[[Job], None] | None = None) -> dict[Key, Any]:
    """Run every job, `slots` at a time, each after the jobs it needs; their results by key.

    With one slot they run here, in the order given (no process to start, and a job's
    traceback is this process's). `finished` is called after each job ends.
    """
    plan = _Plan(list(jobs))
    if slots <= 1:
        for job in plan.jobs:
            plan.done[job.key] = job.run(plan.done)
            if finished is not None:
                finished(job)
        return plan.done
    running: dict[Connection, _Running] = {}
    started: set[Key] = set()
    interrupt = _Interrupt()
    try:
        while len(plan.done) < len(plan.jobs):
            while len(running) < slots:
                job = plan.next_ready(started)
                if job is None:
                    break
                started.add(job.key)
                entry = _start(job, plan.done)
                running[entry.connection] = entry
            for connection in wait([*running, interrupt.reader]):
                if connection == interrupt.reader:
                    interrupt.check()  # Ctrl-C; any other signal with a handler only woke the wait
                    continue
                entry = running[connection]  # type: ignore[index]
                plan.done[entry.job.key] = _outcome(entry)  # a failure leaves it in `running`, to be reaped
                del running[connection]  # type: ignore[arg-type]
                if finished is not None:
                    finished(entry.job)
        return plan.done
    finally:
        interrupt.close()
        _stop(list(running.values()))


class _Interrupt:
    """Ctrl-C taken as a flag and a byte on a pipe the pool waits on, raised between jobs.

    Python's own handler raises KeyboardInterrupt wherever the parent is; inside a fork's
    hooks it is swallowed ("Exception ignored"), and the run went on to the end.
    """

    def __init__(self) -> None:
        self.reader, self.writer = os.pipe()
        os.set_blocking(self.writer, False)
        os.set_blocking(self.reader, False)
        self.interrupted = False
        self.previous: Any = None
        self.wakeup = -1
        if threading.current_thread() is threading.main_thread():  # only the main thread may take signals
            self.previous = signal.signal(signal.SIGINT, self._take)
            self.wakeup = signal.set_wakeup_fd(self.writer, warn_on_full_buffer=False)

    def _take(self, signum: int, frame: object) -> None:
        self.interrupted = True

    def check(self) -> None:
        """Raise KeyboardInterrupt after Ctrl-C; else empty the pipe, which other signals write to too."""
        os.read(self.reader, 4096)
        if self.interrupted:
            raise KeyboardInterrupt

    def close(self) -> None:
        if self.previous is not None:
            signal.set_wakeup_fd(self.wakeup)
            signal.signal(signal.SIGINT, self.previous)
        os.close(self.reader)
        os.close(self.writer)


def _start(job: Job, done: Results) -> _Running:
    context = multiprocessing.get_context("fork")  # the job inherits `done` and the job's closure, unpickled
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(job, done, sending), name=f"healthcode job {job.what or job.key}")
    process.start()
    sending.close()  # the parent's copy: the pipe ends (EOF) when the child's does
    return _Running(job, process, receiving)


def _child(job: Job, done: Results, sending: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent stops the jobs
    signal.set_wakeup_fd(-1)  # the parent's pipe for Ctrl-C is the parent's
    die_with_parent()
    try:
        outcome: tuple[str, Any] = ("ok", job.run(done))
    except HealthcodeError as error:
        outcome = ("expected", (type(error), str(error), error.exit_code))
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the parent, which raises it
        outcome = ("bug", traceback.format_exc())
    try:
        sending.send(outcome)
    except Exception:  # noqa: BLE001 - a result that cannot be pickled is a bug too
        sending.send(("bug", traceback.format_exc()))
    sending.close()


class JobFailed(RuntimeError):
    """A job raised something unexpected (a bug): the message is its traceback in the job's process."""


def _outcome(entry: _Running) -> Any:
    try:
        kind, value = entry.connection.recv()
    except EOFError:  # it died without a word: killed (out of memory?) or a crash in C
        entry.process.join()
        code = entry.process.exitcode
        ended = f"signal {-code} ({signal.Signals(-code).name})" if code is not None and code < 0 else f"exit code {code}"
        guess = " (out of memory?)" if code == -signal.SIGKILL else ""  # the kernel's OOM killer sends SIGKILL
        raise EnvironmentProblem(f"the job to {entry.job.what or entry.job.key} ended with {ended} before it finished{guess}") from None
    finally:
        entry.connection.close()
    entry.process.join()
    if kind == "ok":
        return value
    if kind == "expected":
        kind_of, message, exit_code = value
        raise kind_of(message, exit_code)
    raise JobFailed(f"the job to {entry.job.what or entry.job.key} failed:\n{value}")


def _stop(running: list[_Running]) -> None:
    """Terminate the jobs still running and reap them: none outlives the run."""
    for entry in running:
        entry.process.terminate()
    for entry in running:
        entry.process.join(STOP_GRACE_S)
        if entry.process.is_alive():
            entry.process.kill()
            entry.process.join()
        entry.connection.close()
