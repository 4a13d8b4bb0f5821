"""Entry point of the `healthcode` command.

Every module in `healthcode.cli` that defines `register(app)` adds its commands;
expected errors (`HealthcodeError`) become a message and an exit code. Nothing else
prints a traceback either: an unexpected error is one line naming a file that holds
the traceback for a bug report (exit 2).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tempfile
import traceback

import typer

import healthcode.cli as cli_package
from healthcode.cli.common import err, shown
from healthcode.errors import EXIT_USAGE, HealthcodeError

app = typer.Typer(
    name="healthcode",
    help=(
        "Open, auditable health-code risk scoring on Kafka.\n\n"
        "Example: `healthcode broker start` then `healthcode topics create`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# What a shell reports for a command ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _register_all() -> None:
    for module_info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if module_info.name in ("main", "common"):
            continue
        module = importlib.import_module(f"{cli_package.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    """Run the CLI with expected errors turned into messages and exit codes.

    Usage errors are click's (exit 2); `HealthcodeError` carries its own code; Ctrl-C
    exits 130 with one line; anything else is a bug, reported in one line (exit 2).
    """
    from healthcode.collector import tune_for_scoring
    from healthcode.config import setting_warnings

    tune_for_scoring()
    try:
        for warning in setting_warnings():
            err.print(f"[yellow]warning:[/] {shown(warning)}", soft_wrap=True)
        app()
    except HealthcodeError as error:
        err.print(f"[bold red]error:[/] {shown(error)}", soft_wrap=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - the last line of defence against a traceback
        err.print(f"[bold red]error:[/] unexpected {type(error).__name__}: {shown(error)} ({_saved_traceback()})", soft_wrap=True)
        sys.exit(EXIT_USAGE)


def _saved_traceback() -> str:
    """Write the current exception's traceback to a file; say where, for a bug report."""
    try:
        with tempfile.NamedTemporaryFile("w", prefix="healthcode-error-", suffix=".txt", delete=False) as file:
            traceback.print_exc(file=file)
    except OSError:
        return "this is a bug; please report it"
    return f"this is a bug; please report it with {file.name}"


if __name__ == "__main__":
    main()
