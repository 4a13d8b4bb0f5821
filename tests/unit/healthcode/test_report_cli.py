"""`healthcode rules compare` as an epidemiologist runs it on a small simulated city."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.errors import CheckFailed, EnvironmentProblem

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = str(ROOT / "rules" / "default.yaml")
POINTS = str(ROOT / "rules" / "points.yaml")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def unnamed_copy(path, directory, rows=None):
    """The file (its first `rows`) without the simulator's name for its city, as recorded or older files are."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / path.name
    table = pq.read_table(path)
    pq.write_table((table if rows is None else table.slice(0, rows)).replace_schema_metadata(None), copy)
    return copy


def simulated(tmp_path_factory, residents, days, seed):
    """A city from `healthcode simulate`, its files in Parquet, in a directory of its own."""
    out = tmp_path_factory.mktemp(f"city{seed}-{days}d")
    made = run(
        "simulate", "--residents", str(residents), "--days", str(days), "--seed", str(seed),
        "--format", "parquet", "--out", str(out),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return out


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return simulated(tmp_path_factory, 150, 3, 3)


@pytest.fixture(scope="module")
def backtest(city, tmp_path_factory):
    where = tmp_path_factory.mktemp("backtest")
    outcome = run(
        "rules", "compare", DEFAULT, POINTS,
        "--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"),
        "--report", str(where / "report.html"), "--csv", str(where / "metrics.csv"), "--jobs", "2",
    )  # fmt: skip
    return outcome, where


def test_compare_prints_one_column_per_rule_set_with_the_backtest_metrics(backtest):
    outcome, _ = backtest
    assert outcome.exit_code == 0, outcome.output
    header = next(line for line in outcome.output.splitlines() if "metric" in line and "unit" in line)
    assert header.index("default@1.0.0") < header.index("points@1.0.0")
    for metric in ("flagged while infectious", "infectious hours green", "infection to flag, p90", "precision"):
        assert metric in outcome.output
    assert "period 2022-03-31T16:00:00Z to 2022-04-03T16:00:00Z" in outcome.output
    assert "150 persons" in outcome.output


def test_compare_names_the_reasons_behind_the_differences(backtest):
    outcome, _ = backtest
    assert "points@1.0.0 differs from default@1.0.0 most often as:" in outcome.output
    assert "(exposure_score)" in outcome.output


def test_compare_writes_the_metrics_csv_and_the_report(backtest):
    _, where = backtest
    metrics = pd.read_csv(where / "metrics.csv", index_col="metric")
    assert metrics.columns.tolist() == ["unit", "default@1.0.0", "points@1.0.0", "definition"]
    assert metrics.loc["persons ever restricted", "default@1.0.0"] > 0
    report = (where / "report.html").read_text()
    assert '<table id="metrics">' in report and report.count("data:image/png;base64,") == 4


def test_parallel_and_sequential_replays_give_the_same_figures(backtest, city, tmp_path):
    _, where = backtest
    outcome = run(
        "rules", "compare", DEFAULT, POINTS, "--events", str(city / "events.parquet"),
        "--truth", str(city / "truth.parquet"), "--csv", str(tmp_path / "metrics.csv"), "--jobs", "1",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "metrics.csv").read_text() == (where / "metrics.csv").read_text()


def test_without_truth_compare_gives_level_figures_over_the_simulated_runs_period(city):
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"))
    assert outcome.exit_code == 0, outcome.output
    assert "persons ever restricted" in outcome.output and "precision" not in outcome.output
    assert "150 persons, period 2022-03-31T16:00:00Z to 2022-04-03T16:00:00Z" in outcome.output


def test_events_that_name_no_city_are_compared_over_their_own_span(city, tmp_path):
    unnamed = unnamed_copy(city / "events.parquet", tmp_path)
    outcome = run("rules", "compare", DEFAULT, "--events", str(unnamed))
    assert outcome.exit_code == 0, outcome.output
    assert "150 persons, period 2022-03-31T16:00:00Z to 2022-04-03T15:59:49Z" in outcome.output


def test_an_explicit_period_overrides_the_runs(city):
    outcome = run(
        "rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"),
        "--start", "2022-04-02T00:00:00Z", "--end", "2022-04-03T00:00:00Z",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "period 2022-04-02T00:00:00Z to 2022-04-03T00:00:00Z" in outcome.output


def test_a_period_needs_both_ends(city):
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--start", "2022-04-02T00:00:00Z")
    assert outcome.exit_code == 2 and "give both --start and --end" in outcome.output


def test_a_missing_events_file_is_an_environment_problem(tmp_path):
    outcome = run("rules", "compare", DEFAULT, "--events", str(tmp_path / "nowhere.jsonl"))
    assert isinstance(outcome.exception, EnvironmentProblem) and outcome.exception.exit_code == 2
    assert "cannot read" in str(outcome.exception)


def test_a_truth_that_is_not_the_simulators_is_an_environment_problem(city, tmp_path):
    bad = tmp_path / "truth.parquet"
    pd.DataFrame({"person": ["p1"]}).to_parquet(bad)
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--truth", str(bad))
    assert isinstance(outcome.exception, EnvironmentProblem)
    assert "lacks column(s) infected_at" in str(outcome.exception)


def test_a_broken_rule_set_fails_before_the_events_are_read(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(DEFAULT).read_text().replace("level: red", "level: crimson", 1))
    outcome = run("rules", "compare", str(broken), "--events", str(tmp_path / "not-read.jsonl"))
    assert isinstance(outcome.exception, CheckFailed)


def test_backtest_files_gives_a_notebook_the_dataframes_and_what_they_came_from(city):
    from healthcode.backtest import backtest_files

    backtest = backtest_files([Path(DEFAULT)], city / "events.parquet", truth=city / "truth.parquet")
    assert [replayed.ref for replayed in backtest.replays] == ["default@1.0.0"]
    assert backtest.events > 0 and backtest.malformed == 0
    assert backtest.comparison.metrics.columns.tolist() == ["unit", "default@1.0.0", "definition"]
    assert set(backtest.comparison.leak_and_cost["rule_set"]) == {"default@1.0.0"}


def test_an_events_file_that_is_not_parquet_is_an_environment_problem(tmp_path):
    bad = tmp_path / "events.parquet"
    bad.write_text("not parquet at all")
    outcome = run("rules", "compare", DEFAULT, "--events", str(bad))
    assert isinstance(outcome.exception, EnvironmentProblem)
    assert str(outcome.exception).startswith(f"cannot read {bad}")


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory):
    return simulated(tmp_path_factory, 150, 3, 99)


@pytest.fixture(scope="module")
def shorter(tmp_path_factory):
    return simulated(tmp_path_factory, 150, 2, 3)


def refusal(outcome):
    assert isinstance(outcome.exception, EnvironmentProblem) and outcome.exception.exit_code == 2, outcome.output
    message = str(outcome.exception)
    assert "\n" not in message
    return message


def test_a_truth_from_another_seed_is_refused(city, other_seed):
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--truth", str(other_seed / "truth.parquet"))
    message = refusal(outcome)
    assert "the truth is from another city than the events" in message
    assert "events from seed 3, 150 residents" in message and "truth from seed 99, 150 residents" in message


def test_a_truth_of_a_shorter_run_is_refused_with_both_periods(city, shorter):
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--truth", str(shorter / "truth.parquet"))
    message = refusal(outcome)
    assert "2022-04-03T16:00:00Z" in message and "2022-04-02T16:00:00Z" in message


def test_unnamed_events_are_checked_by_their_persons_and_span(city, shorter, tmp_path):
    events = unnamed_copy(city / "events.parquet", tmp_path / "events")
    outcome = run("rules", "compare", DEFAULT, "--events", str(events), "--truth", str(shorter / "truth.parquet"))
    assert refusal(outcome) == (
        f"cannot use the truth {shorter / 'truth.parquet'} with the events {events}: the truth covers "
        "2022-03-31T16:00:00Z to 2022-04-02T16:00:00Z but the events run from 2022-03-31T16:00:00Z to "
        "2022-04-03T15:59:49Z: it would cut the period; use the truth of the whole run"
    )
    fewer = unnamed_copy(city / "truth.parquet", tmp_path / "truth", rows=100)
    outcome = run("rules", "compare", DEFAULT, "--events", str(events), "--truth", str(fewer))
    assert "the truth does not list 50 of the 150 persons in the events (e.g. p000100): it is from another city" in refusal(outcome)
    outcome = run("rules", "compare", DEFAULT, "--events", str(events), "--truth", str(city / "truth.parquet"))
    assert outcome.exit_code == 0, outcome.output


def test_a_period_beyond_the_truth_is_refused(city):
    outcome = run(
        "rules", "compare", DEFAULT, "--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"),
        "--start", "2022-04-02T00:00:00Z", "--end", "2022-04-12T00:00:00Z",
    )  # fmt: skip
    assert "reaches beyond the truth's 2022-03-31T16:00:00Z to 2022-04-03T16:00:00Z" in refusal(outcome)


@pytest.fixture(scope="module")
def two_small(tmp_path_factory):
    return [simulated(tmp_path_factory, 150, 2, seed) for seed in (21, 22)]


def test_several_event_and_truth_pairs_give_means_intervals_and_differences(two_small, tmp_path):
    pairs = [arg for city in two_small for arg in ("--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"))]
    outcome = run("rules", "compare", DEFAULT, POINTS, *pairs, "--csv", str(tmp_path / "summary.csv"))
    assert outcome.exit_code == 0, outcome.output
    assert "over 2 cities: mean [90% interval]" in outcome.output
    assert "2 cities x 2 rule set(s): 6 jobs, " in outcome.output  # one bar for the whole run
    assert "points@1.0.0 - baseline" in outcome.output
    assert "seed 21: " in outcome.output and "seed 22: " in outcome.output
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.columns.tolist()[:7] == ["metric", "rule_set", "unit", "mean", "low", "high", "cities"]
    restricted = summary[(summary["metric"] == "persons ever restricted")].set_index("rule_set")
    assert restricted.loc["default@1.0.0", "cities"] == 2
    assert restricted.loc["default@1.0.0", "low"] <= restricted.loc["default@1.0.0", "mean"] <= restricted.loc["default@1.0.0", "high"]


def frames(comparison):
    return [comparison.metrics, comparison.shares, comparison.level_shares, comparison.disagreements, comparison.examples, comparison.leak_and_cost]


def test_two_cities_by_two_rule_sets_give_the_same_report_data_two_jobs_at_a_time_as_one(two_small):
    from healthcode.backtest import backtest_cities

    pairs = [(city / "events.parquet", city / "truth.parquet") for city in two_small]
    one, two = (backtest_cities([Path(DEFAULT), Path(POINTS)], pairs, jobs=jobs).cities for jobs in (1, 2))
    assert two.names == one.names == ("seed 21", "seed 22")
    for ours, theirs in [(two.summary, one.summary), (two.per_city, one.per_city), (two.level_shares, one.level_shares), (two.leak_and_cost, one.leak_and_cost)]:
        pd.testing.assert_frame_equal(ours, theirs)
    for ours, theirs in zip(two.comparisons, one.comparisons):
        assert (ours.period, ours.population, ours.rule_sets) == (theirs.period, theirs.population, theirs.rule_sets)
        for mine, other in zip(frames(ours), frames(theirs)):
            pd.testing.assert_frame_equal(mine, other)
    restricted = one.summary[one.summary["metric"] == "persons ever restricted"]
    assert len(restricted) >= 2 and (restricted["mean"] > 0).any()  # figures, not empty frames alike


def test_a_bad_city_among_good_ones_stops_the_run_with_one_line_and_leaves_no_process(two_small, tmp_path):
    bad = tmp_path / "events.parquet"
    pd.DataFrame({"person": ["p1"], "x": [1]}).to_parquet(bad)
    cities = [two_small[0] / "events.parquet", bad, two_small[1] / "events.parquet"]
    # Compared with those before: a session's embedded broker is this process's child too.
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    outcome = run("rules", "compare", DEFAULT, POINTS, *(arg for path in cities for arg in ("--events", str(path))), "--jobs", "2")
    message = refusal(outcome)
    assert message == f"{bad} holds no valid event"
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before


def test_events_from_stdin_are_read_by_every_replay_and_named_as_stdin(tmp_path):
    out = tmp_path / "city"
    assert run("simulate", "--residents", "40", "--days", "1", "--seed", "4", "--out", str(out)).exit_code == 0
    piped = (out / "events.jsonl").read_bytes()
    outcome = runner.invoke(app, ["rules", "compare", DEFAULT, POINTS, "--events", "-", "--jobs", "2"], input=piped, env={"COLUMNS": "250"})
    assert outcome.exit_code == 0, outcome.output
    assert f"-: {len(piped.splitlines()):,} events (0 malformed" in outcome.output
    assert "persons differing from baseline" in outcome.output


def test_short_memory_runs_fewer_jobs_and_says_why(city, monkeypatch):
    import healthcode.backtest

    monkeypatch.setattr(healthcode.backtest, "available_memory", lambda: 1_000_000_000)
    outcome = run("rules", "compare", DEFAULT, POINTS, "--events", str(city / "events.parquet"), "--jobs", "3")
    assert outcome.exit_code == 0, outcome.output
    # A replay of this small city is estimated at 0.4 GB: 80% of 1 GB holds one, not three.
    assert "note: running 1 job at a time, not 3: the largest job may need 0.4 GB, and 80% of the 1.0 GB available is 0.8 GB" in outcome.output
    assert "1 city x 2 rule set(s): 3 jobs, 1 at a time" in outcome.output


def test_ctrl_c_stops_every_job_and_exits_at_once(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("residents: 400\ndays: 3\nseed: 5\n")
    command = [sys.executable, "-m", "healthcode.cli.main", "rules", "compare", DEFAULT, POINTS, "--seeds", "4", "--sim-config", str(config), "--jobs", "2"]
    # A group of its own, as a shell gives a command: Ctrl-C signals the whole group, jobs too.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, start_new_session=True)
    jobs = []
    while not jobs and process.poll() is None:
        time.sleep(0.01)
        jobs = psutil.Process(process.pid).children(recursive=True)
    assert jobs, "the run ended before a job started"
    os.killpg(process.pid, signal.SIGINT)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors  # typer's exit for Ctrl-C
    assert b"Traceback" not in errors
    assert not any(job.is_running() and job.status() != psutil.STATUS_ZOMBIE for job in jobs)


def test_seeds_simulate_cities_of_a_configuration(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("residents: 60\ndays: 2\nseed: 11\n")
    outcome = run(
        "rules", "compare", DEFAULT, POINTS, "--seeds", "3", "--sim-config", str(config),
        "--sim-out", str(tmp_path / "cities"), "--report", str(tmp_path / "report.html"),
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "over 3 cities" in outcome.output
    for seed in (11, 12, 13):
        assert f"seed {seed}: " in outcome.output
        assert (tmp_path / "cities" / f"seed-{seed}" / "truth.parquet").exists()
    html = (tmp_path / "report.html").read_text()
    assert "cities compared</th><td>3: seed 11, seed 12, seed 13" in html
    assert f"simulated from {config} (60 residents, 2 days); seed 11, 60 residents, 2022-03-31T16:00:00Z" in html
    assert "What the rule sets change from default@1.0.0" in html and "sha256 " in html and "<th>generated</th>" in html


def test_the_same_city_twice_is_not_two_draws(city):
    pair = ("--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"))
    outcome = run("rules", "compare", DEFAULT, *pair, *pair)
    assert "the same city twice (seed 3, 150 residents" in refusal(outcome)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--events", "a.parquet", "--events", "b.parquet", "--truth", "a.parquet"), "1 truth file(s) for 2 events file(s)"),
        (("--seeds", "3"), "give --sim-config"),
        (("--sim-config", "x.yaml"), "say how many cities"),
        ((), "give --events, or --seeds"),
    ],
)
def test_options_that_do_not_fit_together_are_usage_errors(args, reason):
    outcome = run("rules", "compare", DEFAULT, *args)
    assert outcome.exit_code == 2 and reason in outcome.output
