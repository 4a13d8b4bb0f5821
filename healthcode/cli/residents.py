"""`healthcode residents token|rotate-secret`: residents' access tokens to their own code.

A token is an HMAC of the pseudonym under the resident secret kept in the key directory
(`codes.access`, `codes.keystore.resident_secrets`); the secret itself is never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import TypeAdapter, ValidationError

from codes.access import resident_token
from codes.keystore import KeyStoreError, resident_secrets, rotate_resident_secret
from healthcode.cli.common import err, out
from healthcode.config import get_settings
from healthcode.errors import EnvironmentProblem
from scoring.events import Pseudonym

residents_app = typer.Typer(
    help=(
        "Residents' access tokens: a resident fetches their own code from any worker with "
        "`Authorization: Bearer TOKEN`.\n\nExample: `healthcode residents token p000042`."
    ),
    no_args_is_help=True,
)
_KEYDIR_HELP = "key directory holding the resident secret (default HEALTHCODE_KEY_DIR)"


def _key_dir(keydir: Path | None) -> Path:
    directory = keydir or get_settings().key_dir
    if directory is None:
        raise typer.BadParameter("no key directory: pass --keydir or set HEALTHCODE_KEY_DIR", param_hint="--keydir")
    return directory


@residents_app.command("token")
def token(
    pseudonym: str = typer.Argument(..., help="the resident's pseudonym, 1-64 of [A-Za-z0-9_-]"),
    keydir: Optional[Path] = typer.Option(None, "--keydir", help=_KEYDIR_HELP),
) -> None:
    """Print PSEUDONYM's access token (the resident secret is made on first use, never printed).

    Example: `healthcode residents token p000042`; then
    `curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8080/residents/p000042/code`.
    """
    try:
        TypeAdapter(Pseudonym).validate_python(pseudonym)
    except ValidationError:
        raise typer.BadParameter("not a pseudonym: 1 to 64 of A-Z a-z 0-9 _ -", param_hint="PSEUDONYM") from None
    try:
        secret = resident_secrets(_key_dir(keydir))[0]
    except (KeyStoreError, OSError) as error:
        raise EnvironmentProblem(f"cannot use the resident secret: {error}") from None
    out.print(resident_token(secret, pseudonym), soft_wrap=True, markup=False)


@residents_app.command("rotate-secret")
def rotate_secret(keydir: Optional[Path] = typer.Option(None, "--keydir", help=_KEYDIR_HELP)) -> None:
    """Make a new resident secret; tokens of the one before keep working until its file is deleted.

    Example: `healthcode residents rotate-secret`, restart the workers, hand out new tokens
    (`residents token`), then delete KEYDIR/resident-token.previous.secret and restart again.
    """
    directory = _key_dir(keydir)
    try:
        rotate_resident_secret(directory)
    except (KeyStoreError, OSError) as error:
        raise EnvironmentProblem(f"cannot rotate the resident secret: {error}") from None
    err.print(f"new resident secret in {directory}; restart the workers, then hand out new tokens")


def register(app: typer.Typer) -> None:
    """Add the `residents` group."""
    app.add_typer(residents_app, name="residents")
