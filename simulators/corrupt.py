"""The text of content faults: what a broken gateway does to a well-formed line."""

from __future__ import annotations

import re

import numpy as np

_TS = re.compile(r'"ts":"([^"]+)"')


def malformed_json(line: str, rng: np.random.Generator) -> str:
    """The line cut short: an unterminated object is never valid JSON."""
    body = line.rstrip("\n")
    return body[: int(rng.integers(1, len(body) - 1))] + "\n"


def wrong_type(line: str, rng: np.random.Generator) -> str:
    """The event time as a bare number instead of RFC 3339 text."""
    return _TS.sub(lambda m: f'"ts":{int(rng.integers(1_600_000_000, 1_700_000_000))}', line, count=1)


def unknown_field(line: str, rng: np.random.Generator) -> str:
    """A field contract v1 does not have, added by an upstream system."""
    return '{"relay":"gw-' + str(int(rng.integers(1, 9))) + '",' + line[1:]


CORRUPTIONS = {"malformed_json": malformed_json, "wrong_type": wrong_type, "unknown_field": unknown_field}
