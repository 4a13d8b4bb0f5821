"""Key files: private part 0600 and never overwritten, public record beside it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from codes.keys import Algorithm, KeyStatus, generate_signing_key
from codes.keystore import KeyStoreError, load_key_infos, load_signing_keys, save_key, set_status


@pytest.mark.parametrize("alg", list(Algorithm))
def test_a_saved_key_loads_back_with_its_private_part(alg: Algorithm, tmp_path: Path) -> None:
    key = generate_signing_key(alg, 100, 200)
    save_key(tmp_path / "keys", key)
    (loaded,) = load_signing_keys(tmp_path / "keys")
    assert loaded.info == key.info
    assert loaded.info.verify(loaded.sign(b"m"), b"m") and key.info.verify(loaded.sign(b"m"), b"m")


def test_the_private_file_is_mode_0600_in_a_0700_directory(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path / "keys", key)
    private = tmp_path / "keys" / f"{key.info.kid.hex()}.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_the_public_record_holds_no_private_material(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.ES256, 100, 200)
    save_key(tmp_path, key)
    record = orjson.loads((tmp_path / f"{key.info.kid.hex()}.json").read_bytes())
    assert set(record) == {"kid", "alg", "public_key", "valid_from", "valid_until", "status"}
    assert record["status"] == "active" and record["alg"] == "ES256"


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path, key)
    with pytest.raises(KeyStoreError):
        save_key(tmp_path, key)


def test_a_private_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path, key)
    os.chmod(tmp_path / f"{key.info.kid.hex()}.key", 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_signing_keys(tmp_path)


def test_a_private_file_that_does_not_match_its_record_is_refused(tmp_path: Path) -> None:
    first, second = generate_signing_key(Algorithm.EDDSA, 100, 200), generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path / "a", first)
    save_key(tmp_path / "b", second)
    (tmp_path / "b" / f"{second.info.kid.hex()}.key").replace(tmp_path / "a" / f"{first.info.kid.hex()}.key")
    with pytest.raises(KeyStoreError, match="does not match"):
        load_signing_keys(tmp_path / "a")


def test_a_damaged_private_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path, key)
    private = tmp_path / f"{key.info.kid.hex()}.key"
    private.write_bytes(private.read_bytes()[:-20])
    with pytest.raises(KeyStoreError) as caught:
        load_signing_keys(tmp_path)
    assert "BEGIN" not in str(caught.value)


def test_revoking_records_the_status_and_listing_reads_no_private_file(tmp_path: Path) -> None:
    key = generate_signing_key(Algorithm.EDDSA, 100, 200)
    save_key(tmp_path, key)
    os.chmod(tmp_path / f"{key.info.kid.hex()}.key", 0o000)
    set_status(tmp_path, key.info.kid.hex(), KeyStatus.REVOKED)
    (info,) = load_key_infos(tmp_path)
    assert info.status is KeyStatus.REVOKED and info.kid == key.info.kid


def test_revoking_an_unknown_kid_or_reading_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        set_status(tmp_path, "00" * 8, KeyStatus.REVOKED)
    with pytest.raises(KeyStoreError):
        load_key_infos(tmp_path / "missing")
