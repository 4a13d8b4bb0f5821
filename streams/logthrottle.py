"""At most one log line per kind per interval: an unreachable broker must not flood the logs.

With the broker gone, the Kafka client logs every failed connect, metadata update,
fetch, heartbeat and produce (about 150 lines a second were measured). Those lines
differ only in their arguments, so a line's kind is its logger, level and message
template: the first of a kind is let through, later ones within the interval are
counted, and the next one let through says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_KINDS = 1024
"""Kinds remembered at once; the oldest are forgotten first (messages built with f-strings are each their own kind)."""


class Throttle(logging.Filter):
    """A handler filter: one record per (logger, level, template) per `interval_s` seconds."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}
        """Per kind: when one was last let through, and how many were held back since."""

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        kind = (record.name, record.levelno, str(record.msg))
        shown, held = self._kinds.get(kind, (float("-inf"), 0))
        if now - shown < self.interval_s:
            self._kinds[kind] = (shown, held + 1)
            return False
        self._kinds.pop(kind, None)
        self._kinds[kind] = (now, 0)
        if len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        if held:
            record.msg = f"{record.getMessage()} [{held} more like this in the last {now - shown:.0f} s]"
            record.args = None
        return True
