"""The dates every distributed list carries: when it was issued and when the next is due.

A checkpoint that holds a list past its `next_update` has a stale list: codes revoked
(or keys withdrawn) since may be missing from it, so it says so on every verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from scoring.timeutil import format_rfc3339, parse_rfc3339


@dataclass(frozen=True, slots=True)
class ListTimes:
    """When a list was issued and when the next one is due (epoch seconds)."""

    issued_at: int
    next_update: int

    def stale(self, at: int) -> bool:
        """Whether the next list was due by `at`: a checkpoint then warns that revocations
        made since may be missing."""
        return at >= self.next_update

    def as_json(self) -> dict[str, str]:
        return {"issued_at": format_rfc3339(self.issued_at), "next_update": format_rfc3339(self.next_update)}


def list_times(issued_at: str, next_update: str) -> ListTimes:
    """The times of a list from their RFC 3339 text; raises `ValueError` if they are not
    times or the next update is not after the issue."""
    times = ListTimes(parse_rfc3339(issued_at), parse_rfc3339(next_update))
    if times.next_update <= times.issued_at:
        raise ValueError("next_update must be after issued_at")
    return times


def body_json(times: ListTimes, list_format: str, **content: object) -> bytes:
    """A list's JSON: its format, its times, then its content."""
    return orjson.dumps({"format": list_format, **times.as_json(), **content}, option=orjson.OPT_INDENT_2) + b"\n"
