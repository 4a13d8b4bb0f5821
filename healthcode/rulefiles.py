"""Rule set files as the CLI and the backtests read them: validated, or a user-facing error."""

from __future__ import annotations

from pathlib import Path

from healthcode.errors import CheckFailed, EnvironmentProblem
from scoring.rules import RuleSet, RuleSetError, load_rule_set


def load_rules(path: Path) -> RuleSet:
    """A validated rule set, or a user-facing error (exit 1 invalid, exit 2 unreadable or not text)."""
    try:
        return load_rule_set(path)
    except RuleSetError as error:
        raise CheckFailed(f"invalid rule set\n{error}") from None
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise EnvironmentProblem(f"{path} is not UTF-8 text (byte {error.start}): rule sets are YAML in UTF-8") from None
