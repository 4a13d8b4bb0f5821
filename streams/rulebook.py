"""Rule sets on the rules topic: how they are published and read back."""

from __future__ import annotations

import orjson

from scoring.rules import RuleSet, RuleSetError
from streams.reading import json_object

RULE_SET = "rule_set"


def rule_set_message(rules: RuleSet, text: str) -> bytes:
    """The rules-topic message of a validated rule set (its YAML text travels as is)."""
    return orjson.dumps({
        "type": RULE_SET, "ref": rules.ref, "content_hash": rules.content_hash,
        "valid_from": rules.valid_from, "yaml": text,
    })


def read_rule_set(message: bytes) -> RuleSet | None:
    """The rule set a rules-topic message carries; None for anything else (fences, strangers)."""
    data = json_object(message)
    text = data.get("yaml")
    # A stranger's message must not stop a worker: every worker reads this topic, again on each restart.
    if data.get("type") != RULE_SET or not isinstance(text, str):
        return None
    try:
        return RuleSet.from_yaml_text(text, f"rules topic ({data.get('ref')})")
    except RuleSetError:
        return None


def history_with(history: list[RuleSet], rules: RuleSet) -> list[RuleSet] | None:
    """The history with `rules` added, or None when it is already there (same content)."""
    if any(known.content_hash == rules.content_hash for known in history):
        return None
    return sorted([*history, rules], key=lambda r: r.valid_from)


class RefConflict(ValueError):
    """A rule set whose id@version is already published with other content."""


def is_published(published: list[RuleSet], rules: RuleSet) -> bool:
    """Whether `rules` (same content) is among `published`.

    Raises `RefConflict` when its id@version is there with other content: codes name
    their rule set by id@version, and the rules topic is compacted by it, so one
    id@version must always mean one content.
    """
    for known in published:
        if known.ref == rules.ref and known.content_hash != rules.content_hash:
            raise RefConflict(
                f"{rules.ref} is already published with other content ({known.content_hash[:12]}, "
                f"not {rules.content_hash[:12]}): give the changed rule set a new version"
            )
    return any(known.content_hash == rules.content_hash for known in published)
