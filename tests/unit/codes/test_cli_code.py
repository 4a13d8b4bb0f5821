"""`healthcode code ...`: issue, render, verify (text, stdin, image) and revoke, with exit codes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Callable

import orjson
import pytest
from PIL import Image

from codes import revocation_id_of
from healthcode.config import get_settings
from scoring.timeutil import parse_rfc3339
from tests.unit.codes.cli_runner import Run, healthcode
from tests.vectors import forge

KEYS_AT = "2022-04-01T00:00:00Z"
ISSUED = "2022-04-11T08:00:00Z"
CLOCK = "2022-04-11T09:00:00Z"


LISTS_AT = "2022-04-11T00:00:00Z"


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    """A key directory with one key, its signed trust list (current at CLOCK) beside it,
    and the list-signing public key a checkpoint pins."""
    healthcode("keys", "generate", "--out", str(tmp_path / "keys"), "--at", KEYS_AT)
    healthcode("keys", "trust-list", str(tmp_path / "keys"), "--out", str(tmp_path / "trust.json"), "--at", LISTS_AT)
    healthcode("keys", "list-key", str(tmp_path / "keys"), "--out", str(tmp_path / "list-key.json"))
    return tmp_path


def _issue(desk: Path, level: str = "green", valid: str = "12h") -> str:
    run = healthcode(
        "code", "issue", "--keydir", str(desk / "keys"), "--person", "p-42", "--level", level, "--at", ISSUED,
        "--valid", valid, "--rule-set", "default@1",
    )
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def _verify(desk: Path, *args: str, stdin: str | None = None) -> tuple[int, dict[str, object]]:
    run = _verify_run(desk, *args, "--json", stdin=stdin)
    return run.exit_code, orjson.loads(run.stdout)


def _verify_run(desk: Path, *args: str, stdin: str | None = None) -> Run:
    """`code verify` at CLOCK with the desk's trust list and pinned list key (unless ARGS name their own)."""
    trust = [] if "--trust" in args else ["--trust", str(desk / "trust.json")]
    pin = [] if "--list-key" in args else ["--list-key", str(desk / "list-key.json")]
    at = [] if "--at" in args else ["--at", CLOCK]
    return healthcode("code", "verify", *args, *trust, *pin, *at, stdin=stdin)


def test_an_issued_code_verifies_with_exit_0_and_the_documented_json(desk: Path) -> None:
    code = _issue(desk)
    exit_code, verdict = _verify(desk, code)
    assert exit_code == 0
    assert verdict == {
        "valid": True, "reason": "OK", "person": "p-42", "level": "green",
        "issued_at": ISSUED, "expires_at": "2022-04-11T20:00:00Z", "kid": verdict["kid"],
    }


def test_the_human_verdict_is_one_line_with_the_level(desk: Path) -> None:
    run = _verify_run(desk, _issue(desk))
    assert run.exit_code == 0
    assert run.stdout.strip().splitlines() == ["VALID GREEN person p-42, expires 2022-04-11T20:00:00Z"]
    assert run.stderr == ""
    refused = _verify_run(desk, _issue(desk, "red"))
    assert refused.exit_code == 1 and refused.stdout.startswith("REFUSED LEVEL_NOT_ADMITTED RED person p-42")


def test_a_refusal_never_shows_unverified_claims_as_facts(desk: Path) -> None:
    issued_at = parse_rfc3339(ISSUED)
    # A red code relabelled green without re-signing: its claims are an unknown sender's say-so.
    forged = forge.with_payload(_issue(desk, "red"), forge.claims_map(issued_at=issued_at, expires_at=issued_at + 12 * 3600))
    run = _verify_run(desk, forged)
    assert (run.exit_code, run.stdout.strip()) == (1, "REFUSED SIGNATURE_INVALID (claims not verified, not shown)")
    exit_code, verdict = _verify(desk, forged)
    assert (exit_code, verdict["reason"]) == (1, "SIGNATURE_INVALID")
    assert verdict["person"] is verdict["level"] is verdict["issued_at"] is verdict["expires_at"] is None


def test_a_code_verifies_from_stdin_and_from_its_qr_image(desk: Path) -> None:
    code = _issue(desk)
    assert _verify(desk, "--stdin", stdin=code + "\n")[1]["reason"] == "OK"
    assert healthcode("code", "qr", code, "--out", str(desk / "code.png")).exit_code == 0
    assert healthcode("code", "qr", "--stdin", "--out", str(desk / "code.svg"), stdin=code).exit_code == 0
    assert (desk / "code.svg").read_bytes().startswith(b"<svg")
    Image.open(desk / "code.png").rotate(90, expand=True).convert("RGB").save(desk / "photo.jpg", quality=60)
    assert _verify(desk, "--image", str(desk / "photo.jpg")) == _verify(desk, code)


def test_tampered_codes_exit_1_with_their_reason(desk: Path) -> None:
    code = _issue(desk)
    red = _issue(desk, "red")
    issued_at = parse_rfc3339(ISSUED)
    claims = forge.claims_map(issued_at=issued_at, expires_at=issued_at + 12 * 3600)
    tampered = {
        "DECOMPRESS_FAILED": forge.flip_character(code, 30),
        "SIGNATURE_INVALID": forge.with_payload(red, claims),
        "MALFORMED_PREFIX": "HC1:" + code[5:],
        "BASE45_INVALID": code.lower().replace("hcq1:", "HCQ1:"),
    }
    for reason, text in tampered.items():
        exit_code, verdict = _verify(desk, text)
        assert (exit_code, verdict["reason"], verdict["valid"]) == (1, reason, False)


def test_time_and_admitted_levels_decide_the_verdict(desk: Path) -> None:
    code, yellow = _issue(desk), _issue(desk, "yellow")
    run = _verify_run(desk, code, "--at", "2022-04-11T20:00:00Z", "--json")
    assert (run.exit_code, orjson.loads(run.stdout)["reason"]) == (1, "EXPIRED")
    exit_code, verdict = _verify(desk, yellow)
    assert (exit_code, verdict["reason"]) == (1, "LEVEL_NOT_ADMITTED")
    assert _verify(desk, yellow, "--admit", "green,yellow")[0] == 0


def test_a_revoked_code_is_refused_and_a_missing_revocation_list_is_an_error(desk: Path) -> None:
    code = _issue(desk)
    revocations = desk / "revoked.json"
    run = healthcode("code", "revoke", code, "--list", str(revocations), "--keydir", str(desk / "keys"), "--at", LISTS_AT)
    assert run.exit_code == 0 and run.stdout.strip() == revocation_id_of(code)
    exit_code, verdict = _verify(desk, code, "--revoked", str(revocations))
    assert (exit_code, verdict["reason"]) == (1, "REVOKED")
    missing = _verify_run(desk, code, "--revoked", str(desk / "revokd.json"))
    assert missing.exit_code == 2 and "cannot read revocation list" in missing.stderr
    assert healthcode("code", "revoke", code, "--list", str(revocations)).exit_code == 2  # no key directory to sign with


def _tampered(path: Path, change: Callable[[bytes], bytes]) -> Path:
    """A copy of a signed list with its body changed and its signature kept."""
    document = orjson.loads(path.read_bytes())
    document["list"] = base64.b64encode(change(base64.b64decode(document["list"]))).decode()
    copy = path.with_name("tampered-" + path.name)
    copy.write_bytes(orjson.dumps(document))
    return copy


def test_a_tampered_list_is_refused_with_exit_2(desk: Path) -> None:
    code = _issue(desk)
    widened = _tampered(desk / "trust.json", lambda body: body.replace(b"2022-06-30", b"2032-06-30"))
    for pin in (["--list-key", str(desk / "list-key.json")], []):  # pinned or not, a broken signature is refused
        run = healthcode("code", "verify", code, "--trust", str(widened), "--at", CLOCK, *pin)
        assert run.exit_code == 2 and "signature does not match" in run.stderr
    revoke = healthcode("code", "revoke", code, "--list", str(desk / "revoked.json"), "--keydir", str(desk / "keys"))
    assert revoke.exit_code == 0
    emptied = _tampered(desk / "revoked.json", lambda body: body.replace(revocation_id_of(code).encode(), b"0" * 32))
    run = _verify_run(desk, code, "--revoked", str(emptied))
    assert run.exit_code == 2 and "revocation list" in run.stderr and "signature does not match" in run.stderr


def test_a_list_signed_by_another_key_than_the_pinned_one_is_refused(desk: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    healthcode("keys", "generate", "--out", str(other / "keys"), "--at", KEYS_AT)
    healthcode("keys", "trust-list", str(other / "keys"), "--out", str(other / "trust.json"), "--at", LISTS_AT)
    run = _verify_run(desk, _issue(desk), "--trust", str(other / "trust.json"))
    assert run.exit_code == 2 and "not by the pinned list-signing key" in run.stderr
    healthcode("code", "revoke", _issue(desk), "--list", str(other / "revoked.json"), "--keydir", str(other / "keys"))
    mixed = _verify_run(desk, _issue(desk), "--revoked", str(other / "revoked.json"), "--list-key", str(desk / "list-key.json"))
    assert mixed.exit_code == 2 and "not by the pinned" in mixed.stderr


def test_without_a_pinned_key_the_command_says_the_signature_was_not_checked(desk: Path) -> None:
    run = healthcode("code", "verify", _issue(desk), "--trust", str(desk / "trust.json"), "--at", CLOCK)
    assert run.exit_code == 0 and run.stdout.startswith("VALID")
    assert "signature not checked against a pinned key" in run.stderr


def test_a_stale_list_gives_a_warning_and_still_a_verdict(desk: Path) -> None:
    code = _issue(desk, valid="48h")
    fresh = _verify_run(desk, code, "--at", "2022-04-11T23:59:59Z")
    assert fresh.exit_code == 0 and "stale" not in fresh.stderr
    stale = _verify_run(desk, code, "--at", "2022-04-12T03:00:00Z")
    assert stale.exit_code == 0 and stale.stdout.startswith("VALID")
    assert "trust list is stale: its next update was due 2022-04-12T00:00:00Z (3h ago)" in stale.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--trust", "missing.json"],
        ["--image", "not-an-image.txt"],
        ["--image", "blank.png"],
        ["--stdin"],
        ["--admit", "purple"],
        ["--at", "noon"],
    ],
    ids=["missing-trust-list", "unreadable-image", "image-without-qr", "code-and-stdin", "unknown-level", "bad-time"],
)
def test_usage_and_environment_errors_exit_2(args: list[str], desk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(desk)
    (desk / "not-an-image.txt").write_text("hello")
    Image.new("L", (100, 100), 255).save(desk / "blank.png")
    code = _issue(desk)
    positional = [] if "--image" in args else [code]
    trust = [] if "--trust" in args else ["--trust", "trust.json"]
    assert healthcode("code", "verify", *positional, *args, *trust, stdin=code).exit_code == 2


def test_issuing_needs_a_usable_key(desk: Path, tmp_path: Path) -> None:
    assert healthcode("code", "issue", "--keydir", str(tmp_path / "none"), "--person", "p", "--level", "green").exit_code == 2
    before_keys = _issue_at(desk, "2022-03-01T00:00:00Z")
    assert before_keys.exit_code == 2 and "no active signing key" in before_keys.stderr
    outliving = healthcode(
        "code", "issue", "--keydir", str(desk / "keys"), "--person", "p", "--level", "green",
        "--at", "2022-06-29T23:00:00Z", "--valid", "12h",
    )
    assert outliving.exit_code == 2 and "may not sign" in outliving.stderr
    assert healthcode("code", "issue", "--keydir", str(desk / "keys"), "--person", "Jane Doe", "--level", "green", "--at", ISSUED).exit_code == 2


def _issue_at(desk: Path, at: str) -> Run:
    return healthcode("code", "issue", "--keydir", str(desk / "keys"), "--person", "p", "--level", "green", "--at", at)


def test_the_key_directory_and_validity_default_to_the_configuration(desk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCODE_KEY_DIR", str(desk / "keys"))
    monkeypatch.setenv("HEALTHCODE_CODE_VALIDITY", "2h")
    get_settings.cache_clear()
    try:
        run = healthcode("code", "issue", "--person", "p-42", "--level", "green", "--at", ISSUED)
    finally:
        get_settings.cache_clear()
    assert run.exit_code == 0
    assert _verify(desk, run.stdout.strip())[1]["expires_at"] == "2022-04-11T10:00:00Z"


def test_qr_writes_only_png_or_svg(desk: Path) -> None:
    assert healthcode("code", "qr", _issue(desk), "--out", str(desk / "code.gif")).exit_code == 2


def test_every_code_command_teaches_with_an_example() -> None:
    for command in ("issue", "qr", "verify", "revoke"):
        assert "Example" in healthcode("code", command, "--help").stdout
