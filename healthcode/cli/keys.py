"""`healthcode keys generate|list|trust-list|revoke`: code-signing keys and trust lists."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import orjson
import typer

from codes.keys import Algorithm, KeyInfo, KeyStatus, generate_signing_key, newest_valid_key
from codes.keystore import KeyStoreError, load_key_infos, save_key, set_status
from codes.trust import dump_trust_list, record_of
from healthcode.cli.common import err, out
from healthcode.errors import EnvironmentProblem
from scoring.timeutil import format_rfc3339, parse_rfc3339

_DAY = 86400

keys_app = typer.Typer(
    help=(
        "Code-signing keys (KEYDIR/<kid>.key, mode 0600, beside KEYDIR/<kid>.json) and the trust "
        "lists checkpoints verify against. Private keys are never printed.\n\n"
        "Example: `healthcode keys generate --out keys/` then "
        "`healthcode keys trust-list keys/ --out trust.json`."
    ),
    no_args_is_help=True,
)

AT_HELP = "the time to act at, RFC 3339 (e.g. 2022-04-01T08:00:00Z); default now"


def moment(at: Optional[str]) -> int:
    """Epoch seconds of an `--at` option, or of the clock when it is omitted."""
    if at is None:
        return int(time.time())
    try:
        return parse_rfc3339(at)
    except ValueError:
        raise typer.BadParameter(f"not an RFC 3339 time with offset: {at!r}", param_hint="--at") from None


def key_infos(keydir: Path) -> list[KeyInfo]:
    """The keys in `keydir`, or exit 2 with the reason."""
    try:
        return load_key_infos(keydir)
    except KeyStoreError as error:
        raise EnvironmentProblem(str(error)) from None


@keys_app.command()
def generate(
    out_dir: Path = typer.Option(..., "--out", help="key directory (created 0700 if missing)"),
    alg: Algorithm = typer.Option(Algorithm.EDDSA.value, "--alg", help="EdDSA (Ed25519) or ES256 (P-256)"),
    valid_days: int = typer.Option(90, "--valid-days", min=1, help="days the key may sign, from --at"),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
) -> None:
    """Create a signing key and print its kid (nothing else goes to stdout).

    Example: `KID=$(healthcode keys generate --out keys/ --alg ES256 --valid-days 30)`
    """
    valid_from = moment(at)
    key = generate_signing_key(alg, valid_from, valid_from + valid_days * _DAY)
    try:
        save_key(out_dir, key)
    except (KeyStoreError, OSError) as error:
        raise EnvironmentProblem(f"cannot write the key: {error}") from None
    err.print(
        f"new {alg} key valid {format_rfc3339(key.info.valid_from)} to {format_rfc3339(key.info.valid_until)}, "
        f"private part in {out_dir / (key.info.kid.hex() + '.key')} (mode 0600)",
        soft_wrap=True,
    )
    out.print(key.info.kid.hex())


def _state(info: KeyInfo, at: int, signer: bytes | None) -> str:
    if info.status is KeyStatus.REVOKED:
        return "[red]revoked[/]"
    if at < info.valid_from:
        return "not yet valid"
    if at >= info.valid_until:
        return "[dim]expired[/]"
    return "[green]signing[/]" if info.kid == signer else "valid"


@keys_app.command("list")
def list_keys(
    keydir: Path = typer.Argument(..., help="key directory"),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
    as_json: bool = typer.Option(False, "--json", help="one JSON array of public key records"),
) -> None:
    """Show each key: kid, algorithm, validity, status, and which one signs now.

    Example: `healthcode keys list keys/ --at 2022-05-01T00:00:00Z`
    """
    infos = key_infos(keydir)
    if as_json:
        records = [record_of(info).model_dump(mode="json") for info in infos]
        out.print(orjson.dumps(records).decode(), soft_wrap=True, markup=False)
        return
    now = moment(at)
    newest = newest_valid_key(infos, now)
    signer = newest.kid if newest else None
    out.print(f"keys in {keydir} at {format_rfc3339(now)}", soft_wrap=True, markup=False)
    out.print(f"[bold]{'kid':<16}  {'alg':<5}  {'valid from':<20}  {'valid until':<20}  status[/]", soft_wrap=True)
    for info in infos:
        out.print(
            f"{info.kid.hex():<16}  {info.alg.value:<5}  {format_rfc3339(info.valid_from):<20}  "
            f"{format_rfc3339(info.valid_until):<20}  {_state(info, now, signer)}",
            soft_wrap=True,
        )
    if signer is None:
        err.print("[yellow]no key can sign at that time[/]: run `healthcode keys generate`")


@keys_app.command("trust-list")
def trust_list(
    keydir: Path = typer.Argument(..., help="key directory"),
    out_file: Path = typer.Option(..., "--out", help="trust list file to write ('-' for stdout)"),
) -> None:
    """Write the trust list checkpoints load: public keys, validity and status only.

    Revoked keys stay in it as revoked, so their codes are refused as KEY_NOT_VALID.
    Example: `healthcode keys trust-list keys/ --out trust.json`
    """
    infos = key_infos(keydir)
    document = dump_trust_list(infos)
    if str(out_file) == "-":
        out.print(document.decode(), end="", soft_wrap=True, markup=False)
        return
    try:
        out_file.write_bytes(document)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {out_file}: {error.strerror}") from None
    err.print(f"wrote {len(infos)} key(s) to {out_file}")


@keys_app.command()
def revoke(
    keydir: Path = typer.Argument(..., help="key directory"),
    kid: str = typer.Argument(..., help="key id (16 hex digits) as `keys list` shows it"),
) -> None:
    """Mark a key revoked: it signs no more, and the next trust list says so.

    Example: `healthcode keys revoke keys/ 67a77fa59232c1fc && healthcode keys trust-list keys/ --out trust.json`
    """
    try:
        set_status(keydir, kid.lower(), KeyStatus.REVOKED)
    except KeyStoreError as error:
        raise EnvironmentProblem(str(error)) from None
    out.print(f"revoked {kid.lower()}")
    err.print(f"publish a new trust list: healthcode keys trust-list {keydir} --out trust.json", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `keys` group."""
    app.add_typer(keys_app, name="keys")
