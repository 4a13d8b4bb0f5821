"""The pool behind `healthcode rules compare`: how many jobs run at once, and how a run ends."""

import os
import signal
import time

import psutil
import pytest

from healthcode.errors import EnvironmentProblem
from healthcode.jobs import MEMORY_SHARE, Job, JobFailed, job_slots, run_jobs

GB = 1_000_000_000


def test_as_many_jobs_as_asked_when_they_fit():
    assert job_slots(2, [GB, GB, GB], available=10 * GB).count == 2
    assert job_slots(2, [GB, GB, GB], available=10 * GB).reason is None


def test_never_more_at_once_than_there_are_jobs():
    assert job_slots(8, [GB, GB], available=100 * GB).count == 2


def test_fewer_jobs_when_the_largest_times_the_count_does_not_fit_and_it_says_why():
    # 80% of 5 GB is 4 GB: two 2-GB jobs fit, three do not.
    slots = job_slots(4, [GB, 2 * GB, GB], available=5 * GB)
    assert slots.count == 2
    assert slots.reason == (
        "running 2 jobs at a time, not 4: the largest job may need 2.0 GB, "
        f"and {MEMORY_SHARE:.0%} of the 5.0 GB available is 4.0 GB"
    )


def test_a_job_larger_than_the_memory_runs_alone_and_is_said_not_to_fit():
    slots = job_slots(2, [6 * GB, GB], available=5 * GB)
    assert slots.count == 1
    assert slots.reason is not None and slots.reason.startswith("running 1 job at a time, not 2:")
    assert slots.reason.endswith("it may not fit")


def test_one_job_asked_is_one_job_whatever_the_memory():
    assert job_slots(1, [6 * GB], available=5 * GB).count == 1


def test_jobs_at_once_must_be_positive():
    with pytest.raises(ValueError):
        job_slots(0, [GB], available=GB)


def chain():
    """Squares, then their sum, then a job on that: results flow along `needs`."""
    jobs = [Job(("square", n), lambda done, n=n: (n * n, os.getpid()), GB) for n in range(4)]
    jobs.append(Job("sum", lambda done: sum(done[("square", n)][0] for n in range(4)), GB, tuple(("square", n) for n in range(4))))
    jobs.append(Job("double", lambda done: 2 * done["sum"], GB, ("sum",)))
    return jobs


def test_jobs_give_the_same_results_one_at_a_time_here_and_two_at_a_time_in_processes_of_their_own():
    here, apart = run_jobs(chain(), 1), run_jobs(chain(), 2)
    assert {key: value for key, value in here.items() if key in ("sum", "double")} == {"sum": 14, "double": 28}
    assert [apart[("square", n)][0] for n in range(4)] == [0, 1, 4, 9] and apart["double"] == 28
    assert {here[("square", n)][1] for n in range(4)} == {os.getpid()}
    assert os.getpid() not in {apart[("square", n)][1] for n in range(4)}


def test_each_finished_job_is_reported_once():
    finished = []
    run_jobs(chain(), 2, finished.append)
    assert sorted(map(str, (job.key for job in finished))) == sorted(map(str, (job.key for job in chain())))


def test_a_job_may_only_need_jobs_given_before_it():
    with pytest.raises(ValueError, match="needs"):
        run_jobs([Job("late", lambda done: 1, GB, ("early",)), Job("early", lambda done: 1, GB)], 2)


def _children() -> set[int]:
    # Compared with those before the run: a session's embedded broker is this process's child too.
    return {child.pid for child in psutil.Process().children(recursive=True)}


def sleeper(done):
    time.sleep(120)


def bad_city(done):
    time.sleep(0.5)  # the sleeper has started
    raise EnvironmentProblem("cannot read city-2/events.parquet: not a Parquet file")


def test_a_failing_job_stops_the_others_and_its_one_line_error_is_raised():
    jobs = [Job("sleeper", sleeper, GB), Job("bad", bad_city, GB), Job("never started", lambda done: 1, GB)]
    before = _children()
    with pytest.raises(EnvironmentProblem, match="^cannot read city-2/events.parquet: not a Parquet file$") as raised:
        run_jobs(jobs, 2)
    assert raised.value.exit_code == 2
    assert _children() <= before


def killed(done):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_job_killed_by_the_kernel_is_an_environment_problem_that_says_so():
    before = _children()
    with pytest.raises(EnvironmentProblem, match="the job to replay it ended with signal 9 \\(SIGKILL\\) before it finished \\(out of memory\\?\\)$"):
        run_jobs([Job("a", killed, GB, what="replay it"), Job("b", lambda done: 1, GB)], 2)
    assert _children() <= before


def buggy(done):
    return {}["missing"]


def unpicklable(done):
    return lambda: None


def test_a_result_that_cannot_be_sent_back_is_a_bug_with_its_traceback():
    before = _children()
    with pytest.raises(JobFailed, match="(?s)the job to compare failed:.*(pickle|Pickl)"):
        run_jobs([Job("a", unpicklable, GB, what="compare"), Job("b", lambda done: 1, GB)], 2)
    assert _children() <= before


def test_a_bug_in_a_job_is_raised_with_the_jobs_traceback():
    with pytest.raises(JobFailed, match="(?s)the job to compare failed:.*KeyError: 'missing'"):
        run_jobs([Job("a", buggy, GB, what="compare"), Job("b", lambda done: 1, GB)], 2)


def signals_the_pool(done):
    os.kill(os.getppid(), signal.SIGUSR1)
    time.sleep(0.5)  # the pool wakes while this job still runs
    return "done"


def test_a_signal_other_than_ctrl_c_does_not_stop_the_pool():
    taken = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: taken.append(signum))
    try:
        assert run_jobs([Job("a", signals_the_pool, GB), Job("b", lambda done: 2, GB)], 2) == {"a": "done", "b": 2}
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert taken == [signal.SIGUSR1]
