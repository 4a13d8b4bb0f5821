"""Rule tests as data: every shipped case passes, and a failing case says what differs."""

from pathlib import Path

import pytest
import yaml

from scoring.rules import RuleSetError, load_rule_set
from scoring.ruletest import load_test_file, run_file, run_rule_tests

RULES = Path(__file__).resolve().parents[3] / "rules"


def shipped_checks():
    for name in ("default", "points"):
        rules = load_rule_set(RULES / f"{name}.yaml")
        for result in run_rule_tests(rules, RULES / f"{name}.yaml"):
            yield pytest.param(result, id=f"{name}: {result.case} @ {result.at}")


@pytest.mark.parametrize("result", list(shipped_checks()))
def test_shipped_rule_test_case(result):
    assert result.passed, result.differences()


@pytest.mark.parametrize("rule_id", ["confirmed_case", "close_contact", "companion", "fever_clinic", "high_risk_area"])
def test_every_default_rule_has_shipped_cases_that_trigger_it(rule_id):
    rules = load_rule_set(RULES / "default.yaml")
    results = run_rule_tests(rules, RULES / "default.yaml")
    assert any(rule_id in result.expected.reasons for result in results)


def test_every_default_clearance_alternative_is_exercised_by_a_case_that_clears():
    rules = load_rule_set(RULES / "default.yaml")
    names = [case.name for path in sorted((RULES / "tests" / "default").glob("*.yaml")) for case in load_test_file(path).cases]
    assert any("recovery" in name for name in names)
    assert any("two negative PCRs 24 h apart clear a case" in name for name in names)
    assert any("clears 7 days after" in name for name in names)
    assert any("two negative PCRs 24 h apart after the contact clear a companion" in name for name in names)
    assert any("negative PCR taken at the visit clears" in name for name in names)
    assert len(rules.rules) == 5


def write_case(tmp_path, check):
    path = tmp_path / "case.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "a fever clinic visit",
                        "events": [
                            {"type": "visit", "ts": "2022-04-01T10:00:00Z", "facility": "Clinic", "kind": "fever_clinic"}
                        ],
                        "checks": [check],
                    }
                ]
            }
        )
    )
    return path


def test_a_failing_check_reports_level_reasons_and_review_differences(tmp_path):
    rules = load_rule_set(RULES / "default.yaml")
    path = write_case(
        tmp_path,
        {"at": "2022-04-02T00:00:00Z", "level": "red", "reasons": ["close_contact"], "next_review_at": "2022-04-03T00:00:00Z"},
    )
    [result] = run_file(path, rules)
    assert not result.passed
    assert result.differences() == [
        "level: expected red, got yellow",
        "reasons: missing close_contact; unexpected fever_clinic",
        "next_review_at: expected 2022-04-03T00:00:00Z, got 2022-04-15T10:00:00Z",
    ]


def test_a_passing_check_has_no_differences(tmp_path):
    rules = load_rule_set(RULES / "default.yaml")
    [result] = run_file(write_case(tmp_path, {"at": "2022-04-02T00:00:00Z", "level": "yellow", "reasons": ["fever_clinic"]}), rules)
    assert result.passed and result.differences() == []


def test_an_invalid_event_in_a_case_names_the_file_and_the_event(tmp_path):
    rules = load_rule_set(RULES / "default.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {"cases": [{"name": "x", "events": [{"type": "visit", "ts": "2022-04-01T10:00:00Z", "kind": "spa"}], "checks": [{"at": "2022-04-01T10:00:00Z", "level": "green"}]}]}
        )
    )
    with pytest.raises(RuleSetError) as caught:
        run_file(path, rules)
    [problem] = caught.value.problems
    assert problem.file == str(path) and problem.path == "cases[0].events[0]"


def test_a_case_without_checks_is_rejected_with_its_path(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump({"cases": [{"name": "x", "checks": []}]}))
    with pytest.raises(RuleSetError, match=r"cases\[0\]\.checks"):
        load_test_file(path)


def test_a_rule_set_with_no_test_directory_has_no_results(tmp_path):
    rules = load_rule_set(RULES / "default.yaml")
    assert run_rule_tests(rules, tmp_path / "default.yaml") == []


def test_an_event_of_someone_else_in_a_case_is_reported_not_applied(tmp_path):
    rules = load_rule_set(RULES / "default.yaml")
    path = tmp_path / "other.yaml"
    event = {"type": "visit", "ts": "2022-04-01T10:00:00Z", "person": "someone-else", "facility": "Clinic", "kind": "fever_clinic"}
    path.write_text(yaml.safe_dump({"cases": [{"name": "x", "events": [event], "checks": [{"at": "2022-04-02T00:00:00Z", "level": "green"}]}]}))
    with pytest.raises(RuleSetError, match=r"cases\[0\]\.events\[0\]: event of `someone-else`"):
        run_file(path, rules)
