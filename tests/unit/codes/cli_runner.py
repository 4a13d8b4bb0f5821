"""Running `healthcode` in-process the way `healthcode.cli.main.main` does."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.errors import HealthcodeError


@dataclass(frozen=True)
class Run:
    """What one command printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str


def healthcode(*args: str, stdin: str | None = None) -> Run:
    """Run `healthcode ARGS`; an expected error becomes its exit code and message, as in main()."""
    result = CliRunner().invoke(app, list(args), input=stdin)
    if isinstance(result.exception, HealthcodeError):
        return Run(result.exception.exit_code, result.stdout, result.stderr + str(result.exception))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)
