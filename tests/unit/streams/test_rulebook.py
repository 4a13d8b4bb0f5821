"""Rule sets on the rules topic: what a message carries, and when a publication is new."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scoring.rules import RuleSet, load_rule_set
from streams.rulebook import RefConflict, is_published, read_rule_set, rule_set_message

RULES = Path(__file__).resolve().parents[3] / "rules"


@pytest.fixture
def points() -> RuleSet:
    return load_rule_set(RULES / "points.yaml")


def _edited(path: Path, **changes: str) -> tuple[RuleSet, str]:
    document = yaml.safe_load(path.read_text())
    document.update(changes)
    text = yaml.safe_dump(document, sort_keys=False)
    return RuleSet.from_yaml_text(text, "edited"), text


def test_a_rule_set_message_reads_back_to_the_same_content(points: RuleSet) -> None:
    message = rule_set_message(points, (RULES / "points.yaml").read_text())
    assert read_rule_set(message).content_hash == points.content_hash


@pytest.mark.parametrize(
    "message",
    [
        b'{"type": "fence", "id": "f"}', b"\xff not json", b"[1, 2]", b"null", b"",
        b'{"type": "rule_set"}', b'{"type": "rule_set", "yaml": 3}', b'{"type": "rule_set", "yaml": "id: [unclosed"}',
    ],
)
def test_anything_else_on_the_rules_topic_is_no_rule_set(message: bytes) -> None:
    assert read_rule_set(message) is None


def test_a_rule_set_is_published_once_its_content_is_on_the_topic(points: RuleSet) -> None:
    default = load_rule_set(RULES / "default.yaml")
    assert not is_published([], points)
    assert not is_published([default], points)
    assert is_published([default, points], points)


def test_other_content_under_a_published_id_and_version_is_a_conflict(points: RuleSet) -> None:
    changed, _ = _edited(RULES / "points.yaml", description="edited without a new version")
    with pytest.raises(RefConflict, match="give the changed rule set a new version"):
        is_published([points], changed)


def test_a_new_version_of_a_published_rule_set_is_not_yet_published(points: RuleSet) -> None:
    newer, _ = _edited(RULES / "points.yaml", version="1.0.1")
    assert not is_published([points], newer)
