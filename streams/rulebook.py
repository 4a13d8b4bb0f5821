"""Rule sets on the rules topic: how they are published and read back."""

from __future__ import annotations

from typing import Any

import orjson

from scoring.rules import RuleSet, RuleSetError

RULE_SET = "rule_set"


def rule_set_message(rules: RuleSet, text: str) -> bytes:
    """The rules-topic message of a validated rule set (its YAML text travels as is)."""
    return orjson.dumps({
        "type": RULE_SET, "ref": rules.ref, "content_hash": rules.content_hash,
        "valid_from": rules.valid_from, "yaml": text,
    })


def read_rule_set(message: bytes) -> RuleSet | None:
    """The rule set a rules-topic message carries; None for anything else (fences, strangers)."""
    try:
        data: dict[str, Any] = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") != RULE_SET:
        return None
    try:
        return RuleSet.from_yaml_text(data["yaml"], f"rules topic ({data.get('ref')})")
    except (RuleSetError, KeyError, TypeError):
        return None


def history_with(history: list[RuleSet], rules: RuleSet) -> list[RuleSet] | None:
    """The history with `rules` added, or None when it is already there (same content)."""
    if any(known.content_hash == rules.content_hash for known in history):
        return None
    return sorted([*history, rules], key=lambda r: r.valid_from)
