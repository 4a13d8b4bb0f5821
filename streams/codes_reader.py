"""Reading the codes topic: every code record, in partition order, fences skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

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
    """One record per level change (re-issues of the same change dropped), in timeline order."""
    by_change: dict[str, dict[str, Any]] = {}
    for record in records:
        by_change.setdefault(record["change_id"], record)
    return sorted(by_change.values(), key=lambda r: (r["assessed_at"], r["person"]))
