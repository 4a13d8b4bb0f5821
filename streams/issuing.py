"""From a level change to the record published on `hc.codes`: the signed code and its explanation.

The record explains (reasons with evidence, rule set, when the level took effect);
the `code` inside it is what a checkpoint verifies and carries only the pseudonym,
the level, the rule set and the validity. `assessed_at` is the event time at which
the level took effect; `issued_at` is when the worker signed it (its clock, passed in).
"""

from __future__ import annotations

from typing import Any

import orjson

from codes import SigningKey, issue
from codes.access import evidence_ref
from scoring.exposure import opaque_ref
from scoring.people import PersonChange
from scoring.residents import Standing
from scoring.timeutil import format_rfc3339


def change_id(person: str, at: int, level: str, rule_set: str) -> str:
    """The identity of a level change: the same change issued twice has the same id."""
    return opaque_ref("change", person, str(at), level, rule_set)


def code_record(
    change: PersonChange, key: SigningKey, *, issuer: str, issued_at: int, validity_s: int,
    evidence_secret: bytes | None = None,
) -> dict[str, Any]:
    """The `hc.codes` message for `change`, with a code valid from `issued_at` for `validity_s`;
    with `evidence_secret`, evidence sources are keyed (`codes.access.evidence_ref`)."""
    explanation = {
        "change_id": change_id(change.person, change.at, change.level, change.rule_set),
        "person": change.person,
        "level": change.level,
        "reasons": [_published(reason.to_dict(), evidence_secret) for reason in change.reasons],
        "rule_set": change.rule_set,
        "assessed_at": format_rfc3339(change.at),
    }
    return signed(explanation, key, issuer=issuer, issued_at=issued_at, validity_s=validity_s)


def _published(reason: dict[str, Any], secret: bytes | None) -> dict[str, Any]:
    if secret is None:
        return reason
    evidence = [{**item, "source": evidence_ref(secret, item["source"])} if isinstance(item.get("source"), str) else item
                for item in reason["evidence"]]
    return {**reason, "evidence": evidence}


def signed(record: dict[str, Any], key: SigningKey, *, issuer: str, issued_at: int, validity_s: int) -> dict[str, Any]:
    """The record with a fresh code for its person, level and rule set (a re-issue keeps the rest)."""
    expires_at = min(issued_at + validity_s, key.info.valid_until)
    text = issue(
        key,
        person=record["person"],
        level=record["level"],
        rule_set=record["rule_set"],
        issued_at=issued_at,
        expires_at=expires_at,
        issuer=issuer,
    )
    return {**record, "issued_at": format_rfc3339(issued_at), "expires_at": format_rfc3339(expires_at), "code": text}


def served_record(standing: Standing, key: SigningKey, *, issuer: str, issued_at: int,
                  validity_s: int) -> dict[str, Any]:
    """What a resident who asks for their code is given: a code for their standing signed now,
    the moment it stands for, and their reasons in words (no evidence)."""
    return signed(
        {"person": standing.person, "level": standing.level, "rule_set": standing.rule_set,
         "as_of": format_rfc3339(standing.at), "reasons": [reason.to_dict() for reason in standing.reasons]},
        key, issuer=issuer, issued_at=issued_at, validity_s=validity_s,
    )


def encode_record(record: dict[str, Any]) -> bytes:
    """The message bytes."""
    return orjson.dumps(record)


def timeline_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The replay timeline line a code record stands for (to compare stream and replay)."""
    return {
        "person": record["person"],
        "at": record["assessed_at"],
        "level": record["level"],
        "reasons": [{"rule": r["rule"], "since": r["since"], "until": r["until"]} for r in record["reasons"]],
        "rule_set": record["rule_set"],
    }
