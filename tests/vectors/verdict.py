"""What the Python verifier says of a conformance vector: its list opened under the pinned
list key, its clock, gate policy and revocations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from codes import Level, open_signed_list, parse_list_key, parse_trust_list, verify
from codes.verify import Verdict
from scoring.timeutil import parse_rfc3339

LISTS = Path(__file__).resolve().parent / "lists"


def verdict_of(vector: dict[str, Any]) -> Verdict:
    """The verdict on `vector["code"]` under the vector's own trust list, time, policy and revocations."""
    pin = parse_list_key((LISTS / "list-key.json").read_bytes())
    return verify(
        vector["code"],
        parse_trust_list(open_signed_list(orjson.dumps(vector["trust_list"]), pin).body),
        at=parse_rfc3339(vector["validation_clock"]),
        admit={Level(name) for name in vector["admit"]},
        revoked=set(vector["revoked"]),
    )
