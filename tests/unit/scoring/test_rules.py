"""Rule set files: loading, identity, derived contact specs, and validation errors that say where."""

from pathlib import Path

import pytest
import yaml

from scoring.rules import RuleSet, RuleSetError, load_rule_set
from scoring.timeutil import parse_rfc3339

RULES = Path(__file__).resolve().parents[3] / "rules"


def minimal(**changes) -> dict:
    document = {
        "id": "tiny",
        "version": "1.0",
        "valid_from": "2022-01-01T00:00:00Z",
        "description": "a minimal valid rule set",
        "contacts": {"close_contact": {"resolution": 10, "max_gap": "15m", "lookback": "14d"}},
        "rules": [
            {"id": "contact", "signal": "close_contact", "level": "red", "window": "14d", "minutes": {"at_least": 15}},
            {
                "id": "companion_like",
                "signal": "close_contact",
                "level": "yellow",
                "window": "7d",
                "clears": [{"negative_tests": {"count": 2, "apart": "24h"}}],
            },
        ],
    }
    document.update(changes)
    return document


def problems_of(document: dict) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        RuleSet.from_yaml_text(yaml.safe_dump(document), "rules/tiny.yaml")
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize("name", ["default", "points"])
def test_shipped_rule_sets_load_and_are_named_id_at_version(name):
    rules = load_rule_set(RULES / f"{name}.yaml")
    assert rules.ref == f"{name}@1.0.0"
    assert rules.valid_from == parse_rfc3339("2020-01-01T00:00:00Z")


def test_default_rule_set_defines_close_contact_and_companion_contact_specs():
    specs = {spec.kind: spec for spec in load_rule_set(RULES / "default.yaml").contact_specs()}
    assert set(specs) == {"close_contact", "companion"}
    assert specs["close_contact"].resolution == 10 and specs["close_contact"].lookback_s == 14 * 86400
    assert specs["companion"].resolution == 8 and specs["companion"].max_gap_s == 30 * 60


def test_retention_is_the_longest_rule_window_or_contact_lookback():
    rules = RuleSet.from_mapping(minimal())
    assert rules.retention_s == 14 * 86400
    longer = minimal(contacts={"close_contact": {"resolution": 10, "max_gap": "15m", "lookback": "21d"}})
    assert RuleSet.from_mapping(longer).retention_s == 21 * 86400


def test_content_hash_ignores_formatting_and_comments_but_not_meaning():
    document = minimal()
    plain = RuleSet.from_yaml_text(yaml.safe_dump(document), "a.yaml")
    commented = RuleSet.from_yaml_text("# a comment\n" + yaml.safe_dump(document, default_flow_style=True), "b.yaml")
    document["rules"][0]["window"] = "10d"
    changed = RuleSet.from_mapping(document)
    assert plain.content_hash == commented.content_hash
    assert plain.content_hash != changed.content_hash


def test_durations_are_read_as_seconds():
    rules = RuleSet.from_mapping(minimal())
    assert rules.rules[0].window == 14 * 86400
    assert rules.rules[1].clears[0].negative_tests.apart == 24 * 3600


def test_an_unknown_signal_is_rejected_with_file_and_path():
    document = minimal()
    document["rules"][0]["signal"] = "cough"
    [problem] = problems_of(document)
    assert problem.startswith("rules/tiny.yaml: rules[0].signal: unknown signal `cough`")


def test_a_window_shorter_than_its_clearance_is_rejected():
    document = minimal()
    document["rules"][1]["clears"] = [{"after": "10d"}]
    [problem] = problems_of(document)
    assert "rules[1].clears[0].after" in problem and "longer than the rule's window 7d" in problem


def test_negative_tests_that_cannot_fit_in_the_window_are_unsatisfiable():
    document = minimal()
    document["rules"][1]["clears"] = [{"negative_tests": {"count": 8, "apart": "24h"}}]
    [problem] = problems_of(document)
    assert "rules[1].clears[0].negative_tests" in problem and "unsatisfiable" in problem


def test_a_minutes_threshold_longer_than_the_lookback_is_unsatisfiable():
    document = minimal()
    document["rules"][0]["minutes"] = {"at_least": 14 * 24 * 60}
    assert any("rules[0].minutes" in p and "unsatisfiable" in p for p in problems_of(document))


def test_a_yellow_threshold_at_or_above_red_is_contradictory():
    document = minimal(
        points_rules=[
            {
                "id": "score",
                "window": "14d",
                "kind_weights": {"close_contact": 1.0},
                "thresholds": {"yellow": 60, "red": 15},
            }
        ]
    )
    [problem] = problems_of(document)
    assert "points_rules[0].thresholds" in problem and "contradictory" in problem


def test_points_weights_for_unknown_contact_kinds_are_rejected():
    document = minimal(
        points_rules=[{"id": "score", "window": "14d", "kind_weights": {"handshake": 1.0}, "thresholds": {"red": 15}}]
    )
    assert any("points_rules[0].kind_weights.handshake" in p for p in problems_of(document))


def test_duplicate_rule_ids_are_rejected():
    document = minimal()
    document["rules"][1]["id"] = "contact"
    assert any("rules[1].id: duplicate rule id `contact`" in p for p in problems_of(document))


def test_recovery_clears_only_case_rules():
    document = minimal()
    document["rules"][1]["clears"] = [{"recovery": True}]
    assert any("rules[1].clears[0].recovery" in p for p in problems_of(document))


def test_a_clearance_with_no_condition_is_rejected():
    document = minimal()
    document["rules"][1]["clears"] = [{}]
    assert any("needs at least one condition" in p for p in problems_of(document))


def test_unknown_fields_and_bad_durations_are_reported_with_their_path():
    document = minimal()
    document["rules"][0]["colour"] = "crimson"
    document["rules"][1]["window"] = "a week"
    found = problems_of(document)
    assert any(p.startswith("rules/tiny.yaml: rules[0].colour:") for p in found)
    assert any(p.startswith("rules/tiny.yaml: rules[1].window:") and "not a duration" in p for p in found)


def test_a_rule_set_without_rules_is_rejected():
    assert any("at least one rule" in p for p in problems_of(minimal(rules=[])))


def test_text_that_is_not_yaml_names_the_file():
    with pytest.raises(RuleSetError, match=r"^broken.yaml: not valid YAML"):
        RuleSet.from_yaml_text("id: [unclosed", "broken.yaml")


def test_every_problem_is_reported_at_once():
    document = minimal()
    document["rules"][0]["signal"] = "cough"
    document["rules"][1]["clears"] = [{"after": "10d"}]
    assert len(problems_of(document)) == 2


def test_load_rule_set_names_the_path_it_read(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: Bad Id\n")
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path)
    assert all(problem.file == str(path) for problem in caught.value.problems)
