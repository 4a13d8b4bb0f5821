"""Residents' access tokens, keyed references and rate limits."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from codes.access import (
    RateLimits, RatePolicy, bearer, evidence_ref, keyed_ref, peer_token, resident_token, token_matches,
)
from codes.keystore import KeyStoreError, reference_secret, resident_secrets, rotate_resident_secret

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_a_token_belongs_to_one_pseudonym_under_one_secret() -> None:
    token = resident_token(SECRET, "p000001")
    assert len(token) == 43 and token.isascii() and "=" not in token
    assert token_matches([SECRET], "p000001", token)
    assert not token_matches([SECRET], "p000002", token), "another resident's token"
    assert not token_matches([OTHER], "p000001", token), "a token of another secret"
    assert not token_matches([SECRET], "p000001", None)
    assert not token_matches([], "p000001", token), "no secret: no token is accepted"
    assert token_matches([OTHER, SECRET], "p000001", token), "the previous secret's tokens still work"


def test_a_token_is_not_a_keyed_reference_nor_the_peer_word_for_the_same_text() -> None:
    assert resident_token(SECRET, "x") != keyed_ref(SECRET, "x")
    assert peer_token(SECRET) not in (resident_token(SECRET, ""), peer_token(OTHER))
    assert keyed_ref(SECRET, "case-1") != keyed_ref(OTHER, "case-1")
    assert len(keyed_ref(SECRET, "case-1")) == 16
    case_ref = keyed_ref(SECRET, "case-1")
    assert evidence_ref(SECRET, case_ref) not in (case_ref, keyed_ref(SECRET, case_ref), evidence_ref(OTHER, case_ref))
    assert evidence_ref(SECRET, case_ref) == evidence_ref(SECRET, case_ref)


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("Bearer  abc ", "abc"),
    (None, None), ("", None), ("Bearer", None), ("Bearer ", None), ("Basic abc", None), ("abc", None),
])
def test_only_a_bearer_header_gives_a_token(header: str | None, token: str | None) -> None:
    assert bearer(header) == token


def test_a_bucket_allows_a_burst_then_the_rate_and_says_how_long_to_wait() -> None:
    limits = RateLimits(RatePolicy(per_minute=60, burst=3))
    assert [limits.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.wait("a", 0.0) == pytest.approx(1.0)
    assert limits.wait("b", 0.0) == 0.0, "each key has its own bucket"
    assert limits.wait("a", 0.5) == pytest.approx(0.5), "a refused request takes nothing"
    assert limits.wait("a", 1.0) == 0.0
    assert limits.wait("a", 100.0) == 0.0
    assert [limits.wait("a", 100.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)], "refilled to the burst, no more"


def test_the_buckets_are_bounded_forgetting_the_least_recently_used() -> None:
    limits = RateLimits(RatePolicy(per_minute=1, burst=1), capacity=2)
    for key in ("a", "b", "c"):
        assert limits.wait(key, 0.0) == 0.0
    assert limits.wait("c", 0.0) > 0
    assert limits.wait("a", 0.0) == 0.0, "a was forgotten: it starts full again"


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_rate_policy_must_allow_something(per_minute: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RatePolicy(per_minute, burst)


def test_secrets_are_made_once_private_and_rotation_keeps_the_previous_one(tmp_path: Path) -> None:
    (first,) = resident_secrets(tmp_path)
    assert resident_secrets(tmp_path) == [first]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reference = reference_secret(tmp_path)
    assert reference != first and len(reference) == 32
    rotate_resident_secret(tmp_path)
    second, previous = resident_secrets(tmp_path)
    assert previous == first and second != first
    rotate_resident_secret(tmp_path)
    assert resident_secrets(tmp_path)[1] == second, "only one previous secret is kept"
    assert reference_secret(tmp_path) == reference, "rotation leaves the reference secret alone"


def test_a_worker_starting_while_another_makes_the_secret_never_reads_it_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers started at once both make the secret on first use: the second one asks while the
    # first is writing it (here: from inside the first one's write), and both must end with one secret.
    import codes.keystore as keystore

    opened = keystore.os.fdopen
    asked: list[bytes] = []
    writes: list[str] = []

    def fdopen(descriptor: int, mode: str) -> Any:
        handle = opened(descriptor, mode)
        write = handle.write

        def meanwhile(text: str) -> int:
            writes.append(text)
            if len(writes) == 1:
                asked.append(reference_secret(tmp_path))  # the other worker, mid-write
            return write(text)

        handle.write = meanwhile
        return handle

    monkeypatch.setattr(keystore.os, "fdopen", fdopen)
    first = reference_secret(tmp_path)
    assert asked == [first] and len(first) == 32
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reference.secret"], "no partial file is left"


def test_a_secret_readable_by_others_or_not_hex_is_refused(tmp_path: Path) -> None:
    resident_secrets(tmp_path)
    path = tmp_path / "resident-token.secret"
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError, match="readable by group or others"):
        resident_secrets(tmp_path)
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(KeyStoreError, match="not a resident secret"):
        resident_secrets(tmp_path)
    with pytest.raises(KeyStoreError, match="no key directory"):
        resident_secrets(tmp_path / "missing")
