"""Entry point of the `healthcode` command.

Every module in `healthcode.cli` that defines `register(app)` adds its commands;
expected errors (`HealthcodeError`) become a message and an exit code, never a
traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console
from rich.markup import escape

import healthcode.cli as cli_package
from healthcode.errors import HealthcodeError

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

_err = Console(stderr=True)


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

    Usage errors are click's (exit 2); `HealthcodeError` carries its own code.
    """
    try:
        app()
    except HealthcodeError as error:
        _err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
