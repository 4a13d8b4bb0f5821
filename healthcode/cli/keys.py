"""`healthcode keys generate|list|trust-list|revocation-list|list-key|revoke`: code-signing
keys, and the signed lists checkpoints verify against.

The lists are read here for every command that uses them (`code verify`, `checkpoint
serve`): the signature, the pin, the dates, each with a precise error (exit 2) or warning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import orjson
import typer

from codes.keys import Algorithm, KeyInfo, KeyStatus, SigningKey, generate_signing_key, newest_valid_key
from codes.keystore import (
    KeyStoreError,
    current_list_key,
    list_key_infos,
    list_signing_key,
    load_key_infos,
    save_key,
    set_status,
)
from codes.listtimes import ListTimes
from codes.revocation import RevocationList, RevocationListError, dump_revocation_list, parse_revocation_list
from codes.signed import SignedList, SignedListError, open_signed_list, parse_list_key, sign_list
from codes.trust import TrustList, TrustListError, dump_trust_list, parse_trust_list, record_of
from healthcode.cli.common import err, out
from healthcode.errors import EnvironmentProblem
from scoring.timeutil import format_rfc3339, parse_duration, parse_rfc3339

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
NEXT_UPDATE_HELP = "when the next list is due, from now (or --at), e.g. 24h; checkpoints warn after it"
LIST_KEY_HELP = (
    "the list-signing public key to pin (KEYDIR/list-signing/<kid>.json, or `healthcode keys list-key KEYDIR`); "
    "without it the lists' signer is not checked"
)


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


def _next_update(at: int, every: str) -> ListTimes:
    try:
        return ListTimes(at, at + parse_duration(every))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--next-update") from None


def _list_key(keydir: Path, at: int) -> SigningKey:
    try:
        return list_signing_key(keydir, at)
    except (KeyStoreError, OSError) as error:
        raise EnvironmentProblem(f"list-signing key: {error}") from None


def _write(path: Path, data: bytes) -> None:
    if str(path) == "-":
        out.print(data.decode(), end="", soft_wrap=True, markup=False)
        return
    try:
        path.write_bytes(data)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {path}: {error.strerror}") from None


@keys_app.command("trust-list")
def trust_list(
    keydir: Path = typer.Argument(..., help="key directory"),
    out_file: Path = typer.Option(..., "--out", help="signed trust list to write ('-' for stdout)"),
    next_update: str = typer.Option("24h", "--next-update", help=NEXT_UPDATE_HELP),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
) -> None:
    """Write the signed trust list checkpoints load: public keys, validity and status only.

    It is signed by the list-signing key in KEYDIR/list-signing/ (made on first use), not
    by a code-signing key. Revoked keys stay in it as revoked, so their codes are refused
    as KEY_REVOKED.
    Example: `healthcode keys trust-list keys/ --out trust.json --next-update 24h`
    """
    infos = key_infos(keydir)
    issued_at = moment(at)
    times = _next_update(issued_at, next_update)
    key = _list_key(keydir, issued_at)
    _write(out_file, sign_list(key, dump_trust_list(infos, times)))
    if str(out_file) != "-":
        err.print(
            f"wrote {len(infos)} key(s) to {out_file}, signed by list key {key.info.kid.hex()} "
            f"(checkpoints pin it: `healthcode keys list-key {keydir}`), next update due {format_rfc3339(times.next_update)}",
            soft_wrap=True,
        )


def write_revocation_list(keydir: Path, path: Path, add: Iterable[str], at: int, next_update: str) -> int:
    """Sign the revocation list at `path` again with `add` added and fresh dates; the ids
    already there are kept only if the list's signature is the key directory's own.
    Returns how many ids it holds."""
    times = _next_update(at, next_update)
    key = _list_key(keydir, at)
    existing: frozenset[str] = frozenset()
    if path.exists():
        try:
            existing = parse_revocation_list(open_signed_list(path.read_bytes(), key.info).body).ids
        except OSError as error:
            raise EnvironmentProblem(f"cannot read {path}: {error.strerror}") from None
        except (SignedListError, RevocationListError) as error:
            raise EnvironmentProblem(f"revocation list {path}: {error}") from None
    ids = existing | set(add)
    try:
        document = dump_revocation_list(ids, times)
    except RevocationListError as error:
        raise EnvironmentProblem(str(error)) from None
    _write(path, sign_list(key, document))
    return len(ids)


@keys_app.command("revocation-list")
def revocation_list(
    keydir: Path = typer.Argument(..., help="key directory (its list-signing key signs the list)"),
    out_file: Path = typer.Option(..., "--out", help="signed revocation list to refresh (created empty if missing)"),
    next_update: str = typer.Option("24h", "--next-update", help=NEXT_UPDATE_HELP),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
) -> None:
    """Sign the revocation list again with fresh dates, keeping its ids (`code revoke` adds them).

    Checkpoints warn when a list is past its next update, so publish one before then.
    Example: `healthcode keys revocation-list keys/ --out revoked.json`
    """
    count = write_revocation_list(keydir, out_file, (), moment(at), next_update)
    err.print(f"wrote {count} revoked code id(s) to {out_file}", soft_wrap=True)


@keys_app.command("list-key")
def list_key(
    keydir: Path = typer.Argument(..., help="key directory"),
    out_file: Path = typer.Option(Path("-"), "--out", help="file to write the public record to ('-' for stdout)"),
) -> None:
    """Print the list-signing public key that checkpoints pin (`--list-key`).

    Example: `healthcode keys list-key keys/ --out list-key.json`
    """
    try:
        infos = list_key_infos(keydir)
    except KeyStoreError as error:
        raise EnvironmentProblem(str(error)) from None
    current = current_list_key(infos)
    if current is None:
        raise EnvironmentProblem(f"no list-signing key in {keydir} yet: `healthcode keys trust-list` makes one")
    _write(out_file, (record_of(current).model_dump_json(indent=2) + "\n").encode())


@dataclass(frozen=True)
class CheckpointLists:
    """The lists a checkpoint verifies with, checked, with the files as they were read
    (a checkpoint page is sent those bytes and checks them itself)."""

    trust: TrustList
    revoked: RevocationList | None
    trust_file: bytes
    revoked_file: bytes | None
    pin: KeyInfo | None


def _open(path: Path, what: str, pin: KeyInfo | None) -> tuple[bytes, SignedList]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        return data, open_signed_list(data, pin)
    except SignedListError as error:
        raise EnvironmentProblem(f"{what} {path} refused: {error}") from None


def age(seconds: int) -> str:
    """A rough, readable length of time: minutes, hours or days."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def _warn_if_stale(what: str, times: ListTimes | None, at: int) -> None:
    if times is not None and times.stale(at):
        err.print(
            f"[yellow]warning:[/] {what} is stale: its next update was due {format_rfc3339(times.next_update)} "
            f"({age(at - times.next_update)} ago); verifying with it, but what changed since is missing",
            soft_wrap=True,
        )


def read_lists(trust: Path, revoked: Optional[Path], list_key_file: Optional[Path], at: int) -> CheckpointLists:
    """Read and check the signed trust list and (optional) revocation list: exit 2 when a
    file is missing, malformed, tampered with or signed by another key than the pinned
    one (or than each other); warn when the signer is not pinned or a list is stale."""
    pin = None
    if list_key_file is not None:
        try:
            pin = parse_list_key(list_key_file.read_bytes())
        except OSError as error:
            raise EnvironmentProblem(f"cannot read list key {list_key_file}: {error.strerror}") from None
        except SignedListError as error:
            raise EnvironmentProblem(f"list key {list_key_file}: {error}") from None
    trust_file, signed_trust = _open(trust, "trust list", pin)
    try:
        trusted = parse_trust_list(signed_trust.body)
    except TrustListError as error:
        raise EnvironmentProblem(f"trust list {trust}: {error}") from None
    revocations = revoked_file = None
    if revoked is not None:
        revoked_file, signed_revoked = _open(revoked, "revocation list", pin)
        if signed_revoked.signer.kid != signed_trust.signer.kid:
            raise EnvironmentProblem(
                f"revocation list {revoked} is signed by key {signed_revoked.signer.kid.hex()}, "
                f"the trust list by {signed_trust.signer.kid.hex()}: they must come from one list-signing key"
            )
        try:
            revocations = parse_revocation_list(signed_revoked.body)
        except RevocationListError as error:
            raise EnvironmentProblem(f"revocation list {revoked}: {error}") from None
    if pin is None:
        err.print(
            f"[yellow]warning:[/] list signature not checked against a pinned key: the lists name list key "
            f"{signed_trust.signer.kid.hex()}, pin it with --list-key",
            soft_wrap=True,
        )
    _warn_if_stale("trust list", trusted.times, at)
    _warn_if_stale("revocation list", revocations.times if revocations else None, at)
    return CheckpointLists(trusted, revocations, trust_file, revoked_file, pin)


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
