"""`healthcode code issue|qr|verify|revoke`: signed health codes at the desk and the checkpoint."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import orjson
import typer
from PIL import Image, UnidentifiedImageError

from codes import (
    ClaimsError,
    IssueError,
    KeyProblem,
    KeyStoreError,
    Level,
    QrError,
    Verdict,
    issue,
    load_signing_keys,
    read_qr,
    render_qr,
    revocation_id_of,
    signing_key_at,
    verify,
)
from healthcode.cli.common import err, out, shown
from healthcode.cli.keys import AT_HELP, LIST_KEY_HELP, NEXT_UPDATE_HELP, moment, read_lists, write_revocation_list
from healthcode.config import get_settings
from healthcode.errors import EnvironmentProblem
from scoring.timeutil import format_rfc3339, parse_duration

code_app = typer.Typer(
    help=(
        "Issue signed health codes, render them as QR images, and verify them offline the way a "
        "checkpoint does (trust list, optional revocation list, no network).\n\n"
        "Example: `healthcode code issue --keydir keys/ --person p-42 --level green | "
        "healthcode code verify --stdin --trust trust.json`."
    ),
    no_args_is_help=True,
)

# The most characters a QR code holds (version 40, alphanumeric mode, error correction L).
MAX_CODE_CHARS = 4296
# A 48-megapixel phone photo, and some: anything larger is not a photo of a code.
MAX_IMAGE_PIXELS = 50_000_000

_LEVEL_STYLE = {Level.GREEN: "bold green", Level.YELLOW: "bold yellow", Level.RED: "bold red"}


def _read_text(code: Optional[str], stdin: bool) -> str:
    """The code text from the argument or stdin, refused (exit 2) beyond what a QR code can hold.

    The bound comes before any decoding, and stdin is read no further than it: a 100 MB
    text took 840 MB of memory before it was refused as not Base45.
    """
    if stdin == (code is not None):
        raise typer.BadParameter("give the code text as an argument or --stdin, not both", param_hint="CODE")
    # Room for a line end after the longest code (stripped below). Bytes that are not UTF-8
    # stay visible as U+FFFD, which no code contains: the verdict says BASE45_INVALID.
    text = sys.stdin.buffer.read(MAX_CODE_CHARS + 3).decode("utf-8", "replace") if stdin else str(code)
    # Only line ends are stripped: a space is a Base45 character and may end a code.
    text = text.strip("\r\n")
    if len(text) > MAX_CODE_CHARS:
        raise EnvironmentProblem(
            f"the code text is longer than {MAX_CODE_CHARS:,} characters, more than a QR code holds: not a health code"
        )
    return text


@code_app.command("issue")
def issue_code(
    person: str = typer.Option(..., "--person", help="pseudonym, 1-64 of [A-Za-z0-9_-]; never a name"),
    level: Level = typer.Option(..., "--level", help="green, yellow or red"),
    keydir: Optional[Path] = typer.Option(None, "--keydir", help="key directory (default HEALTHCODE_KEY_DIR)"),
    valid: Optional[str] = typer.Option(None, "--valid", help="how long it holds, e.g. 12h (default HEALTHCODE_CODE_VALIDITY)"),
    at: Optional[str] = typer.Option(None, "--at", help="issued-at time, RFC 3339; default now"),
    rule_set: str = typer.Option("manual@1", "--rule-set", help="id@version of the assessing rule set"),
) -> None:
    """Sign a code with the newest valid key in KEYDIR and print its text (HCQ1:...).

    Example: `healthcode code issue --keydir keys/ --person p-42 --level yellow --valid 6h`
    """
    settings = get_settings()
    directory = keydir or settings.key_dir
    if directory is None:
        raise typer.BadParameter("no key directory: pass --keydir or set HEALTHCODE_KEY_DIR", param_hint="--keydir")
    try:
        validity = parse_duration(valid or settings.code_validity)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--valid") from None
    issued_at = moment(at)
    try:
        key = signing_key_at(load_signing_keys(directory), issued_at)
        text = issue(
            key,
            person=person,
            level=level,
            rule_set=rule_set,
            issued_at=issued_at,
            expires_at=issued_at + validity,
            issuer=settings.issuer,
        )
    except (KeyStoreError, KeyProblem, IssueError, ClaimsError) as error:
        raise EnvironmentProblem(str(error)) from None
    out.print(text, soft_wrap=True, markup=False)


@code_app.command()
def qr(
    code: Optional[str] = typer.Argument(None, help="the code text (HCQ1:...)"),
    out_file: Path = typer.Option(..., "--out", help="image to write: .png or .svg"),
    stdin: bool = typer.Option(False, "--stdin", help="read the code text from stdin"),
    scale: int = typer.Option(4, "--scale", min=1, max=64, help="pixels per QR module"),
) -> None:
    """Render a code as a QR image (alphanumeric mode, error correction Q).

    Example: `healthcode code qr "$CODE" --out code.png`
    """
    fmt = out_file.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise typer.BadParameter("the file must end in .png or .svg", param_hint="--out")
    try:
        image = render_qr(_read_text(code, stdin), fmt, scale=scale)  # type: ignore[arg-type]
    except QrError as error:
        raise EnvironmentProblem(str(error)) from None
    try:
        out_file.write_bytes(image)
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {out_file}: {error.strerror}") from None
    err.print(f"wrote {shown(out_file)}")


def _code_from_image(path: Path) -> str:
    """The one code in the image at `path`; an image over `MAX_IMAGE_PIXELS` is refused from its
    header, before its pixels are decoded (a 140 KB PNG can inflate to gigabytes)."""
    try:
        with warnings.catch_warnings():
            # PIL warns between its limit and twice it; ours is lower and checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise EnvironmentProblem(
                        f"image {path} is {image.width}x{image.height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} a photo of a code needs: not read"
                    )
                texts = read_qr(image)
    except Image.DecompressionBombError as error:
        raise EnvironmentProblem(f"image {path} not read: {error}") from None
    except (OSError, UnidentifiedImageError) as error:
        raise EnvironmentProblem(f"cannot read image {path}: {error}") from None
    if not texts:
        raise EnvironmentProblem(f"no QR code found in {path}")
    if len(texts) > 1:
        raise EnvironmentProblem(f"{len(texts)} QR codes in {path}: show one at a time")
    return texts[0]


def admitted(admit: str) -> frozenset[Level]:
    """The levels of an `--admit` option such as `green,yellow`."""
    try:
        return frozenset(Level(name.strip()) for name in admit.split(",") if name.strip())
    except ValueError:
        raise typer.BadParameter("levels are green, yellow, red, separated by commas", param_hint="--admit") from None


def _verdict_json(verdict: Verdict) -> dict[str, object]:
    """The verdict as JSON; the claims only when the signature and key vouch for them
    (otherwise null: what an unverified code says is nobody's word)."""
    verified = verdict.reason.claims_verified

    def when(seconds: int | None) -> str | None:
        return None if seconds is None or not verified else format_rfc3339(seconds)

    return {
        "valid": verdict.valid,
        "reason": verdict.reason.value,
        "person": verdict.person if verified else None,
        "level": verdict.level.value if verdict.level and verified else None,
        "issued_at": when(verdict.issued_at),
        "expires_at": when(verdict.expires_at),
        "kid": verdict.kid,
    }


def _verdict_line(verdict: Verdict) -> str:
    if not verdict.reason.claims_verified:
        return f"[bold red]REFUSED {verdict.reason.value}[/] (claims not verified, not shown)"
    level = verdict.level
    assert level is not None and verdict.expires_at is not None  # verified claims are complete
    facts = f"[{_LEVEL_STYLE[level]}]{level.value.upper()}[/] person {verdict.person}, expires {format_rfc3339(verdict.expires_at)}"
    if verdict.valid:
        return f"[bold green]VALID[/] {facts}"
    return f"[bold red]REFUSED {verdict.reason.value}[/] {facts}"


@code_app.command("verify")
def verify_code(
    code: Optional[str] = typer.Argument(None, help="the code text (HCQ1:...)"),
    trust: Path = typer.Option(..., "--trust", help="signed trust list from `healthcode keys trust-list`"),
    image: Optional[Path] = typer.Option(None, "--image", help="PNG/JPEG photo or rendering of the QR code"),
    stdin: bool = typer.Option(False, "--stdin", help="read the code text from stdin"),
    admit: str = typer.Option("green", "--admit", help="levels let through, e.g. green,yellow"),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
    revoked: Optional[Path] = typer.Option(None, "--revoked", help="signed revocation list (`healthcode code revoke`)"),
    list_key: Optional[Path] = typer.Option(None, "--list-key", envvar="HEALTHCODE_LIST_KEY", help=LIST_KEY_HELP),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a line"),
) -> None:
    """Verify a code offline: exit 0 if valid and its level admitted, 1 if refused, 2 on usage errors.

    The reason is the first failed check of: MALFORMED_PREFIX, BASE45_INVALID,
    DECOMPRESS_FAILED, COSE_INVALID, CLAIMS_INVALID, UNSUPPORTED_ALGORITHM, UNKNOWN_KEY,
    SIGNATURE_INVALID, KEY_REVOKED, KEY_NOT_VALID, NOT_YET_VALID, EXPIRED, REVOKED,
    LEVEL_NOT_ADMITTED. A refused code's claims are shown only when its signature and key
    held (from NOT_YET_VALID on). A list that is unreadable, tampered with or signed by
    another than the pinned key is an error (exit 2); a stale list, a warning.

    Example: `healthcode code verify --image photo.jpg --trust trust.json --list-key list-key.json --admit green,yellow --json`
    """
    if image is not None:
        if code is not None or stdin:
            raise typer.BadParameter("give one of CODE, --image or --stdin", param_hint="--image")
        text = _code_from_image(image)
    else:
        text = _read_text(code, stdin)
    levels = admitted(admit)
    now = moment(at)
    lists = read_lists(trust, revoked, list_key, now)
    verdict = verify(text, lists.trust, at=now, admit=levels, revoked=lists.revoked or frozenset())
    if as_json:
        out.print(orjson.dumps(_verdict_json(verdict)).decode(), soft_wrap=True, markup=False)
    else:
        out.print(_verdict_line(verdict))
    if not verdict.valid:
        raise typer.Exit(1)


@code_app.command()
def revoke(
    code: Optional[str] = typer.Argument(None, help="the code text (HCQ1:...)"),
    revocation_list: Path = typer.Option(..., "--list", help="signed revocation list to add to (created if missing)"),
    stdin: bool = typer.Option(False, "--stdin", help="read the code text from stdin"),
    keydir: Optional[Path] = typer.Option(None, "--keydir", help="key directory whose list-signing key signs the list (default HEALTHCODE_KEY_DIR)"),
    next_update: str = typer.Option("24h", "--next-update", help=NEXT_UPDATE_HELP),
    at: Optional[str] = typer.Option(None, "--at", help=AT_HELP),
) -> None:
    """Add a code's revocation id to the signed revocation list, e.g. when its level changed before expiry.

    Example: `healthcode code revoke "$CODE" --list revoked.json --keydir keys/`
    """
    directory = keydir or get_settings().key_dir
    if directory is None:
        raise typer.BadParameter("no key directory to sign the list: pass --keydir or set HEALTHCODE_KEY_DIR", param_hint="--keydir")
    try:
        code_id = revocation_id_of(_read_text(code, stdin))
    except ValueError as error:
        raise EnvironmentProblem(f"not a health code: {error}") from None
    write_revocation_list(directory, revocation_list, {code_id}, moment(at), next_update)
    out.print(code_id)


def register(app: typer.Typer) -> None:
    """Add the `code` group."""
    app.add_typer(code_app, name="code")
