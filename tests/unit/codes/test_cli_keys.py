"""`healthcode keys ...`: generate, list, trust-list and revoke, never showing a private key."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from codes import KeyStatus, open_signed_list, parse_list_key, parse_trust_list
from tests.unit.codes.cli_runner import Run, healthcode

AT = "2022-04-01T00:00:00Z"


def _private_material(keydir: Path) -> list[str]:
    """The body lines of every private key file, to look for in output."""
    return [line for path in keydir.glob("*.key") for line in path.read_text().splitlines() if "-----" not in line]


def _assert_no_secret(run: Run, keydir: Path) -> None:
    for line in _private_material(keydir):
        assert line not in run.stdout and line not in run.stderr
    assert "PRIVATE" not in run.stdout + run.stderr


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


def test_generate_prints_only_the_kid_and_writes_a_0600_private_file(keydir: Path) -> None:
    run = healthcode("keys", "generate", "--out", str(keydir), "--at", AT)
    assert run.exit_code == 0
    kid = run.stdout.strip()
    assert len(kid) == 16 and int(kid, 16) >= 0
    assert stat.S_IMODE((keydir / f"{kid}.key").stat().st_mode) == 0o600
    assert orjson.loads((keydir / f"{kid}.json").read_bytes())["valid_until"] == "2022-06-30T00:00:00Z"
    _assert_no_secret(run, keydir)


def test_list_shows_each_key_and_which_one_signs(keydir: Path) -> None:
    old = healthcode("keys", "generate", "--out", str(keydir), "--at", AT).stdout.strip()
    new = healthcode("keys", "generate", "--out", str(keydir), "--alg", "ES256", "--valid-days", "30", "--at", "2022-04-10T00:00:00Z").stdout.strip()
    run = healthcode("keys", "list", str(keydir), "--at", "2022-04-11T00:00:00Z")
    assert run.exit_code == 0
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines() if line.split() and line.split()[0] in (old, new)}
    assert rows[old][1:] == ["EdDSA", "2022-04-01T00:00:00Z", "2022-06-30T00:00:00Z", "valid"]
    assert rows[new][1:] == ["ES256", "2022-04-10T00:00:00Z", "2022-05-10T00:00:00Z", "signing"]
    _assert_no_secret(run, keydir)
    as_json = healthcode("keys", "list", str(keydir), "--json")
    assert {record["kid"] for record in orjson.loads(as_json.stdout)} == {old, new}
    _assert_no_secret(as_json, keydir)


def test_the_trust_list_holds_public_keys_only_and_revocation_shows_in_the_next_one(keydir: Path, tmp_path: Path) -> None:
    kid = healthcode("keys", "generate", "--out", str(keydir), "--at", AT).stdout.strip()
    trust = tmp_path / "trust.json"
    assert healthcode("keys", "trust-list", str(keydir), "--out", str(trust)).exit_code == 0
    pin = parse_list_key(healthcode("keys", "list-key", str(keydir)).stdout.encode())
    (info,) = parse_trust_list(open_signed_list(trust.read_bytes(), pin).body)
    assert info.kid.hex() == kid and info.status is KeyStatus.ACTIVE
    revoked = healthcode("keys", "revoke", str(keydir), kid)
    assert revoked.exit_code == 0
    to_stdout = healthcode("keys", "trust-list", str(keydir), "--out", "-")
    (info,) = parse_trust_list(open_signed_list(to_stdout.stdout.encode(), pin).body)
    assert info.status is KeyStatus.REVOKED
    _assert_no_secret(to_stdout, keydir)
    assert "revoked" in healthcode("keys", "list", str(keydir), "--at", AT).stdout


def test_lists_are_signed_by_a_list_key_made_once_apart_from_the_code_signing_keys(keydir: Path, tmp_path: Path) -> None:
    kid = healthcode("keys", "generate", "--out", str(keydir), "--at", AT).stdout.strip()
    assert healthcode("keys", "list-key", str(keydir)).exit_code == 2  # none before the first list
    first = healthcode("keys", "trust-list", str(keydir), "--out", str(tmp_path / "a.json"), "--at", AT, "--next-update", "6h")
    second = healthcode("keys", "revocation-list", str(keydir), "--out", str(tmp_path / "r.json"), "--at", "2022-05-01T00:00:00Z")
    assert first.exit_code == second.exit_code == 0
    pin = parse_list_key(healthcode("keys", "list-key", str(keydir)).stdout.encode())
    assert pin.kid.hex() != kid
    trust = parse_trust_list(open_signed_list((tmp_path / "a.json").read_bytes(), pin).body)
    assert trust.times is not None and (trust.times.issued_at, trust.times.next_update - trust.times.issued_at) == (1648771200, 6 * 3600)
    open_signed_list((tmp_path / "r.json").read_bytes(), pin)  # the same key signed both, weeks apart
    assert [line.split()[0] for line in healthcode("keys", "list", str(keydir)).stdout.splitlines()[2:]] == [kid]
    assert healthcode("code", "issue", "--keydir", str(keydir), "--person", "p", "--level", "green", "--at", AT).exit_code == 0
    _assert_no_secret(first, keydir / "list-signing")
    assert healthcode("keys", "trust-list", str(keydir), "--out", str(tmp_path / "b.json"), "--next-update", "soon").exit_code == 2


def test_usage_and_environment_errors_exit_2(keydir: Path) -> None:
    assert healthcode("keys", "list", str(keydir)).exit_code == 2
    healthcode("keys", "generate", "--out", str(keydir), "--at", AT)
    assert healthcode("keys", "revoke", str(keydir), "0123456789abcdef").exit_code == 2
    assert healthcode("keys", "generate", "--out", str(keydir), "--alg", "RS256").exit_code == 2
    assert healthcode("keys", "generate", "--out", str(keydir), "--at", "yesterday").exit_code == 2


def test_every_keys_command_teaches_with_an_example() -> None:
    for command in ("generate", "list", "trust-list", "revocation-list", "list-key", "revoke"):
        assert "Example" in healthcode("keys", command, "--help").stdout
