"""Whether a worker is fit to be sent traffic, and if not, why: the logic behind `/healthz`.

Pure: the worker reports what it observed (a finished loop turn, a broker answer or
failure, a loss of the broker's data, a rebuild) with the monotonic time it observed
it, and `reason` answers from those facts alone. Nothing here knows Kafka or a clock,
so the same verdicts carry over to another stream runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_STALL_TIMEOUT_S = 30.0


@dataclass
class Health:
    """What a worker last observed about itself and its broker, in monotonic seconds."""

    stall_timeout_s: float
    """A loop that has not finished a turn for this long is stalled."""
    last_progress: float
    broker_down_since: float | None = None
    broker_error: str = ""
    data_lost: str = ""
    """What showed that the broker lost data, until the rebuild that follows it is done."""

    def progressed(self, now: float) -> None:
        """The loop finished a turn."""
        self.last_progress = max(self.last_progress, now)

    def broker_failed(self, now: float, error: str) -> bool:
        """The broker did not answer; True when it answered until now (a new outage)."""
        self.broker_error = error
        if self.broker_down_since is not None:
            return False
        self.broker_down_since = now
        return True

    def broker_answered(self) -> float | None:
        """The broker answered; the monotonic time the outage it ends began, or None."""
        began, self.broker_down_since, self.broker_error = self.broker_down_since, None, ""
        return began

    def lost_data(self, what: str) -> None:
        """The broker no longer has data the worker read from it: the worker must rebuild."""
        self.data_lost = what

    def rebuilt(self) -> None:
        """The worker rebuilt its state from what the broker has now."""
        self.data_lost = ""

    def reason(self, now: float, built: bool) -> str | None:
        """Why the worker is not ready now, or None when it is; `built`: it owns its partitions' state."""
        if self.broker_down_since is not None:
            return f"broker unreachable for {now - self.broker_down_since:.0f} s: {self.broker_error}"
        if self.data_lost:
            return f"the broker lost data ({self.data_lost}): not ready until rebuilt from what it has"
        stalled = now - self.last_progress
        if stalled > self.stall_timeout_s:
            return f"no progress for {stalled:.0f} s (stall timeout {self.stall_timeout_s:g} s)"
        if not built:
            return "waiting for partitions or rebuilding their state"
        return None
