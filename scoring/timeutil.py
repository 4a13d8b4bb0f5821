"""Event-time helpers: RFC 3339 UTC text <-> integer epoch seconds, and durations."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def to_epoch(moment: datetime) -> int:
    """Seconds since the epoch of an aware datetime (sub-second parts are dropped)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: event times must carry a UTC offset")
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    """The aware UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def format_rfc3339(seconds: int) -> str:
    """Epoch seconds as RFC 3339 UTC text with a `Z` suffix, e.g. `2022-04-01T08:15:00Z`."""
    return from_epoch(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int:
    """Epoch seconds of RFC 3339 text; a missing offset is an error, not local time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return to_epoch(moment)


def parse_duration(text: str | int) -> int:
    """Seconds of a duration such as `15m`, `24h`, `14d` (an int is taken as seconds)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text}")
        return text
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected a number and a unit s, m, h, d or w, like 15m or 14d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The largest whole unit that expresses `seconds` exactly, e.g. 1209600 -> `14d`."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
