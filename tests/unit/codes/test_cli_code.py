"""`healthcode code ...`: issue, render, verify (text, stdin, image) and revoke, with exit codes."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    """A key directory with one key, and its trust list beside it."""
    healthcode("keys", "generate", "--out", str(tmp_path / "keys"), "--at", KEYS_AT)
    healthcode("keys", "trust-list", str(tmp_path / "keys"), "--out", str(tmp_path / "trust.json"))
    return tmp_path


def _issue(desk: Path, level: str = "green", *extra: str) -> str:
    run = healthcode(
        "code", "issue", "--keydir", str(desk / "keys"), "--person", "p-42", "--level", level, "--at", ISSUED,
        "--valid", "12h", "--rule-set", "default@1", *extra,
    )
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def _verify(desk: Path, *args: str, stdin: str | None = None) -> tuple[int, dict[str, object]]:
    run = healthcode("code", "verify", *args, "--trust", str(desk / "trust.json"), "--at", CLOCK, "--json", stdin=stdin)
    return run.exit_code, orjson.loads(run.stdout)


def test_an_issued_code_verifies_with_exit_0_and_the_documented_json(desk: Path) -> None:
    code = _issue(desk)
    exit_code, verdict = _verify(desk, code)
    assert exit_code == 0
    assert verdict == {
        "valid": True, "reason": "OK", "person": "p-42", "level": "green",
        "issued_at": ISSUED, "expires_at": "2022-04-11T20:00:00Z", "kid": verdict["kid"],
    }


def test_the_human_verdict_is_one_line_with_the_level(desk: Path) -> None:
    run = healthcode("code", "verify", _issue(desk), "--trust", str(desk / "trust.json"), "--at", CLOCK)
    assert run.exit_code == 0
    assert run.stdout.strip().splitlines() == ["VALID GREEN person p-42, expires 2022-04-11T20:00:00Z"]
    refused = healthcode("code", "verify", _issue(desk, "red"), "--trust", str(desk / "trust.json"), "--at", CLOCK)
    assert refused.exit_code == 1 and refused.stdout.startswith("REFUSED LEVEL_NOT_ADMITTED RED person p-42")


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
    run = healthcode("code", "verify", code, "--trust", str(desk / "trust.json"), "--at", "2022-04-11T20:00:00Z", "--json")
    assert (run.exit_code, orjson.loads(run.stdout)["reason"]) == (1, "EXPIRED")
    exit_code, verdict = _verify(desk, yellow)
    assert (exit_code, verdict["reason"]) == (1, "LEVEL_NOT_ADMITTED")
    assert _verify(desk, yellow, "--admit", "green,yellow")[0] == 0


def test_a_revoked_code_is_refused_and_a_missing_revocation_list_only_warns(desk: Path) -> None:
    code = _issue(desk)
    revocations = desk / "revoked.json"
    run = healthcode("code", "revoke", code, "--list", str(revocations))
    assert run.exit_code == 0 and run.stdout.strip() == revocation_id_of(code)
    exit_code, verdict = _verify(desk, code, "--revoked", str(revocations))
    assert (exit_code, verdict["reason"]) == (1, "REVOKED")
    missing = healthcode("code", "verify", code, "--trust", str(desk / "trust.json"), "--at", CLOCK, "--revoked", str(desk / "none.json"))
    assert missing.exit_code == 0 and "warning" in missing.stderr


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
