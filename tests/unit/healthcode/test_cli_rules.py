"""`healthcode rules ...`: the commands an epidemiologist runs on rule set files."""

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from healthcode.cli.rules import register
from healthcode.errors import CheckFailed, EnvironmentProblem

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = str(ROOT / "rules" / "default.yaml")
POINTS = str(ROOT / "rules" / "points.yaml")


@pytest.fixture
def run():
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, ["rules", *args], env={"COLUMNS": "200"})

    return invoke


def test_rules_test_runs_every_shipped_case_and_passes(run):
    outcome = run("test", DEFAULT, POINTS)
    assert outcome.exit_code == 0, outcome.output
    assert "0 failed, 2 rule set(s)" in outcome.output
    assert "default@1.0.0" in outcome.output and "points@1.0.0" in outcome.output


def test_rules_test_fails_with_the_difference_when_a_case_fails(run, tmp_path):
    rules = tmp_path / "default.yaml"
    rules.write_text(Path(DEFAULT).read_text().replace("minutes: {at_least: 15}", "minutes: {at_least: 16}"))
    (tmp_path / "tests").symlink_to(ROOT / "rules" / "tests")
    outcome = run("test", str(rules), "--failures-only")
    assert isinstance(outcome.exception, CheckFailed)
    assert "exactly 15 minutes of close contact" in outcome.output
    assert "level: expected red, got green" in outcome.output


def test_rules_test_fails_for_a_rule_set_without_cases(run, tmp_path):
    rules = tmp_path / "lonely.yaml"
    rules.write_text(Path(DEFAULT).read_text().replace("id: default", "id: lonely"))
    outcome = run("test", str(rules))
    assert isinstance(outcome.exception, CheckFailed)
    assert "no test cases for lonely@1.0.0" in str(outcome.exception)


def test_rules_validate_accepts_shipped_sets_and_names_problems_of_bad_ones(run, tmp_path):
    assert run("validate", DEFAULT, POINTS).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(DEFAULT).read_text().replace("signal: fever_clinic", "signal: cough"))
    outcome = run("validate", str(bad))
    assert isinstance(outcome.exception, CheckFailed)
    assert f"{bad}: rules[3].signal: unknown signal `cough`" in outcome.output.replace("\n", "")


def test_rules_validate_of_a_missing_file_is_an_environment_problem(run, tmp_path):
    outcome = run("validate", str(tmp_path / "absent.yaml"))
    assert isinstance(outcome.exception, EnvironmentProblem)


def test_rules_show_says_what_each_level_means_and_how_it_clears(run):
    outcome = run("show", DEFAULT)
    assert outcome.exit_code == 0
    text = outcome.output
    assert text.index("red") < text.index("yellow") < text.index("green  No known exposure")
    assert "clears on a recovery visit" in text
    assert "clears with 2 negative PCR tests at least 24h apart taken after the last contact" in text
    assert "infectious from 2d before the sample" in text


def test_rules_diff_lists_changes_in_domain_words(run, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        Path(DEFAULT).read_text().replace('version: "1.0.0"', 'version: "1.1.0"').replace("window: 7d", "window: 10d")
    )
    outcome = run("diff", DEFAULT, str(changed))
    assert outcome.exit_code == 0
    assert "identity: default@1.0.0 -> default@1.1.0" in outcome.output
    assert "high_risk_area lasts at most: 7d -> 10d" in outcome.output
    assert run("diff", DEFAULT, DEFAULT).output.strip().endswith("no change in meaning")
    assert run("diff", DEFAULT, str(changed), "--exit-code").exit_code == 1


def test_rules_explain_applies_the_persons_events_and_prints_level_and_reasons(run, tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [
        {"type": "visit", "event_id": "v1", "ts": "2022-04-01T09:00:00Z", "person": "p1", "facility": "Clinic", "kind": "fever_clinic"},
        {"type": "test_result", "event_id": "t1", "ts": "2022-04-01T20:00:00Z", "person": "p1",
         "sampled_at": "2022-04-01T09:00:00Z", "test": "pcr", "result": "positive"},
        {"type": "visit", "event_id": "v2", "ts": "2022-04-01T09:00:00Z", "person": "p2", "facility": "Clinic", "kind": "diagnosis"},
    ]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    outcome = run("explain", "--events", str(events), "--person", "p1", "--at", "2022-04-02T00:00:00Z", "--rules", DEFAULT)
    assert outcome.exit_code == 0, outcome.output
    assert "p1 at 2022-04-02T00:00:00Z under default@1.0.0: red" in outcome.output
    assert "confirmed_case since 2022-04-01T20:00:00Z" in outcome.output
    assert "fever_clinic since 2022-04-01T09:00:00Z" in outcome.output
    assert "line 4: skipped" in outcome.output
    assert "not included" in outcome.output
