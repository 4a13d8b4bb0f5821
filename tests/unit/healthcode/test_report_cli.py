"""`healthcode rules compare` as an epidemiologist runs it on a small simulated city."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.errors import CheckFailed, EnvironmentProblem

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = str(ROOT / "rules" / "default.yaml")
POINTS = str(ROOT / "rules" / "points.yaml")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    made = run("simulate", "--residents", "300", "--days", "7", "--seed", "3", "--format", "parquet", "--out", str(out))
    assert made.exit_code == 0, made.output
    return out


@pytest.fixture(scope="module")
def backtest(city, tmp_path_factory):
    where = tmp_path_factory.mktemp("backtest")
    outcome = run(
        "rules", "compare", DEFAULT, POINTS,
        "--events", str(city / "events.parquet"), "--truth", str(city / "truth.parquet"),
        "--report", str(where / "report.html"), "--csv", str(where / "metrics.csv"), "--workers", "2",
    )  # fmt: skip
    return outcome, where


def test_compare_prints_one_column_per_rule_set_with_the_backtest_metrics(backtest):
    outcome, _ = backtest
    assert outcome.exit_code == 0, outcome.output
    header = next(line for line in outcome.output.splitlines() if "metric" in line and "unit" in line)
    assert header.index("default@1.0.0") < header.index("points@1.0.0")
    for metric in ("flagged while infectious", "infectious hours green", "infection to flag, p90", "precision"):
        assert metric in outcome.output
    assert "period 2022-03-31T16:00:00Z to 2022-04-07T16:00:00Z" in outcome.output
    assert "300 persons" in outcome.output


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
        "--truth", str(city / "truth.parquet"), "--csv", str(tmp_path / "metrics.csv"), "--workers", "1",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "metrics.csv").read_text() == (where / "metrics.csv").read_text()


def test_without_truth_compare_gives_level_figures_over_the_events_own_span(city):
    outcome = run("rules", "compare", DEFAULT, "--events", str(city / "events.parquet"))
    assert outcome.exit_code == 0, outcome.output
    assert "persons ever restricted" in outcome.output and "precision" not in outcome.output
    assert "300 persons, period 2022-03-31T16:00:00Z to 2022-04-07T15:59:51Z" in outcome.output


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
