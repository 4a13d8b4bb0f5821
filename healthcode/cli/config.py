"""`healthcode config show`: the effective configuration."""

from __future__ import annotations

import re

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


# The password in a URL's user information, of its first host or of any after a comma:
# kafka://user:password@host:9092,user:password@other:9092.
_URL_PASSWORD = re.compile(r"(?P<user>(?:://|,)[^/@:,\s]*):[^/@,\s]*@")


def redacted(value: object) -> object:
    """`value` with any password inside a URL replaced by `***`."""
    return _URL_PASSWORD.sub(r"\g<user>:***@", value) if isinstance(value, str) and "://" in value else value


@config_app.command()
def show(json: bool = typer.Option(False, "--json", help="print JSON instead of name = value lines")) -> None:
    """Print the effective configuration; a password inside a URL is shown as ***.

    Settings hold no secrets by design (signing keys stay in their files), but a broker
    URL may carry user:password@, and this output ends up in bug reports.

    Example: `HEALTHCODE_CONFIG=prod.env healthcode config show --json`
    """
    data = {name: redacted(value) for name, value in get_settings().model_dump(mode="json").items()}
    if json:
        out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True, markup=False)
        return
    for name, value in data.items():
        out.print(f"{name} = {value}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    """Add the `config` group."""
    app.add_typer(config_app, name="config")
