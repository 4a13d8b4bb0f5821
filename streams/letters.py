"""Which rejected inputs a worker dead-letters, when retention deletes old dead letters.

A rebuild reads the inputs from the start and would dead-letter every bad one again;
it skips the positions whose letters it finds on the dead-letter topic. That topic
holds raw personal data, so its retention is bounded (by default as long as pings'),
while visits and area designations are kept for good: once a bad visit's letter has
expired, a rebuild would find no letter and send it again, and again after every later
expiry, keeping those raw bytes on the dead-letter topic as long as the visit's topic
keeps them. (A bad ping cannot come back that way for long: it expires with its topic.)

Kafka deletes a log's oldest messages, and only those older than the retention. A letter
is written after the input it reports was appended (input topics stamp messages with
the broker's append time), so only an input appended more than the retention ago can
have lost its letter. A worker therefore sends a letter for a rejected input unless one
is on the topic, or the topic has lost messages to retention (its log no longer starts
at offset 0) and the input was appended more than the retention ago. Such an input is
counted (`healthcode_dead_letters_expired_total`), never applied, and not reported
again: either its letter expired, or no worker read it within a whole retention period
after it arrived (an outage that long), the one case where a bad input gets no letter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter

from streams.deadletter import read_letter

Position = tuple[str, int, int]
"""Source topic, partition and offset of an input."""

NOT_EXPIRED_MS = -(2**63)

EXPIRED = Counter(
    "healthcode_dead_letters_expired",
    "Rejected inputs older than the dead-letter retention, with no letter left, not dead-lettered again",
)


@dataclass
class LetterLedger:
    """The positions already dead-lettered, and which inputs' letters retention may have deleted."""

    retention_s: int | None
    """How long the dead-letter topic keeps letters; None: for good."""
    lettered: set[Position] = field(default_factory=set)
    expired_before_ms: int = NOT_EXPIRED_MS
    """Inputs appended before this (epoch ms) may have lost their letter to retention."""

    def found(self, position: Position) -> None:
        """A letter for `position` is on the dead-letter topic."""
        self.lettered.add(position)

    def found_in(self, messages: Iterable[bytes]) -> None:
        """The letters among `messages` read from the dead-letter topic (anything else is passed over)."""
        for message in messages:
            letter = read_letter(message)
            if letter is not None:
                self.found((letter.topic, letter.partition, letter.offset))

    def loaded(self, truncated: bool, now_s: float) -> None:
        """Every letter on the topic has been `found`; `truncated`: retention deleted its oldest messages."""
        if truncated and self.retention_s is not None:
            self.expired_before_ms = int((now_s - self.retention_s) * 1000)

    def due(self, position: Position, appended_ms: int) -> bool:
        """Whether the rejected input at `position`, appended at `appended_ms`, is to be
        dead-lettered now; if so it counts as lettered from here on."""
        if position in self.lettered:
            return False
        if appended_ms < self.expired_before_ms:
            EXPIRED.inc()
            self.lettered.add(position)
            return False
        self.lettered.add(position)
        return True
