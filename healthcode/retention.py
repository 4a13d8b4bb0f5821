"""How long the topics holding raw personal data keep it, under the effective settings.

`healthcode topics create` gives the topics this retention, and workers need the dead
letters' to tell which letters retention may have deleted (`streams.letters`).
"""

from __future__ import annotations

from healthcode.config import Settings
from healthcode.errors import EnvironmentProblem
from healthcode.rulefiles import load_rules
from scoring.timeutil import parse_duration
from streams.admin import Retention, retention_plan


def configured_retention(settings: Settings) -> Retention:
    """Pings for the rule set's (HEALTHCODE_RULES_FILE) longest window plus the lateness, and a
    day; dead letters as long, or HEALTHCODE_DEAD_LETTER_RETENTION (a bad value: EnvironmentProblem)."""
    window_s, lateness_s = load_rules(settings.rules_file).retention_s, parse_duration(settings.allowed_lateness)
    try:
        return retention_plan(window_s, lateness_s, settings.dead_letter_retention)
    except ValueError as error:
        raise EnvironmentProblem(f"HEALTHCODE_DEAD_LETTER_RETENTION: {error}") from None
