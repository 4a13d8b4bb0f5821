"""`healthcode config show`: the effective configuration."""

from __future__ import annotations

import orjson
import typer

from healthcode.cli.common import out
from healthcode.config import get_settings

config_app = typer.Typer(
    help=(
        "Inspect configuration (HEALTHCODE_* variables, or the file HEALTHCODE_CONFIG names).\n\n"
        "Example: `HEALTHCODE_PARTITIONS=8 healthcode config show`."
    ),
    no_args_is_help=True,
)


@config_app.command()
def show(json: bool = typer.Option(False, "--json", help="print JSON instead of name = value lines")) -> None:
    """Print the effective configuration (settings hold no secrets: signing keys stay in their files)."""
    data = get_settings().model_dump(mode="json")
    if json:
        out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True)
        return
    for name, value in data.items():
        out.print(f"{name} = {value}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `config` group."""
    app.add_typer(config_app, name="config")
