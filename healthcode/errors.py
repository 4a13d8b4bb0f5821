"""Errors the CLI turns into a message and an exit code instead of a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_OK = 1
EXIT_USAGE = 2


class HealthcodeError(Exception):
    """An expected failure with a message for the user and a meaningful exit code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class EnvironmentProblem(HealthcodeError):
    """The machine or configuration cannot do what was asked (exit 2)."""


class CheckFailed(HealthcodeError):
    """The thing checked is not ok: invalid events, a rejected code, a failed rule test (exit 1)."""

    exit_code = EXIT_NOT_OK
