"""Reading the codes topic: every code record, in partition order, fences skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from scoring.timeline import Line, fold, record_key
from scoring.timeutil import parse_rfc3339
from streams.reading import json_object, read_from_start
from streams.topics import Topics


def read_codes(
    bootstrap: str, topics: Topics, follow: bool = False, idle_s: float = 3.0, stop: Callable[[], bool] = lambda: False
) -> Iterator[dict[str, Any]]:
    """Code records from the beginning; without `follow`, stop after `idle_s` seconds with nothing new.

    Anything else on the topic (the workers' fences, a stranger's bytes) is passed over;
    reading ends early once `stop()` is true.
    """
    for record in read_from_start(bootstrap, topics.codes, idle_s, follow, stop=stop):
        data = json_object(record.value)
        if data.get("type") == "code":
            yield data


def distinct_changes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline the records tell, one record per line, in timeline order.

    Each person's records are read in the order given (publish order: a person's records
    share one partition); a record supersedes what earlier ones said from its moment on,
    and one restating the level and the set of active rules in force adds no line, whatever
    its reasons' `since`/`until` (`scoring.timeline`, contract version 3: a line per change
    of level or of reasons, as replay's). Re-issues of a change restate it.
    """
    by_person: dict[str, list[Line]] = {}
    for record in records:
        fold(by_person.setdefault(record["person"], []), Line(record_key(record), record))
    lines = [line.source for timeline in by_person.values() for line in timeline]
    return sorted(lines, key=lambda r: (parse_rfc3339(r["assessed_at"]), r["person"]))


def redundant(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records that changed nothing their person's earlier records showed (no level, no set of
    reasons, no line cut off): sent twice."""
    shown: dict[str, list[Line]] = {}
    found = []
    for record in records:
        lines = shown.setdefault(record["person"], [])
        before = list(lines)
        fold(lines, Line(record_key(record), record))
        if lines == before:
            found.append(record)
    return found
