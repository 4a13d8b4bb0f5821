"""Each refusal reason reached by a real mutation of a real code, checks in their order."""

from __future__ import annotations

from typing import Callable

import pytest

from codes import Algorithm, KeyInfo, KeyStatus, Level, SigningKey, TrustList, generate_signing_key, verify
from codes.claims import LEVEL
from codes.revocation import revocation_id_of
from codes.verify import Reason
from tests.unit.codes.conftest import CLOCK, EXPIRES_AT, ISSUED_AT, KEYS_FROM, KEYS_UNTIL
from tests.vectors import forge


def _reason(code: str | bytes, trust: TrustList, **options: object) -> Reason:
    return verify(code, trust, at=options.pop("at", CLOCK), **options).reason  # type: ignore[arg-type]


@pytest.mark.parametrize("alg_issue", ["ed_issue", "es_issue"])
def test_a_fresh_green_code_is_valid_with_its_claims(alg_issue: str, request: pytest.FixtureRequest, trust: TrustList) -> None:
    code = request.getfixturevalue(alg_issue)()
    verdict = verify(code, trust, at=CLOCK)
    assert verdict.valid and verdict.reason is Reason.OK
    assert (verdict.person, verdict.level, verdict.issued_at, verdict.expires_at) == ("p-42", Level.GREEN, ISSUED_AT, EXPIRES_AT)
    assert verdict.rule_set == "default@1" and verdict.issuer == "healthcode"


def test_a_code_is_prefixed_and_entirely_qr_alphanumeric(ed_issue: Callable[..., str]) -> None:
    code = ed_issue()
    assert code.startswith("HCQ1:")
    assert set(code) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


@pytest.mark.parametrize(
    "text",
    ["", "HC1:6BFOXN", "hcq1:ABC", "HCQ1", " HCQ1:ABC", "#" * 100_000, "HCQ１:ABC"],
    ids=["empty", "eu-prefix", "lowercase", "no-colon", "leading-space", "junk-100k", "fullwidth-digit"],
)
def test_text_without_the_prefix_is_a_malformed_prefix(text: str, trust: TrustList) -> None:
    assert _reason(text, trust) is Reason.MALFORMED_PREFIX


def test_bytes_are_read_like_text_and_non_ascii_bytes_are_not_base45(ed_issue: Callable[..., str], trust: TrustList) -> None:
    code = ed_issue()
    assert _reason(code.encode("ascii"), trust) is Reason.OK
    assert _reason(b"HCQ1:\xff\xfe", trust) is Reason.BASE45_INVALID
    assert _reason(b"\x00" * 10, trust) is Reason.MALFORMED_PREFIX


@pytest.mark.parametrize(
    "damage",
    [
        lambda code: code[:20] + "a" + code[21:],
        lambda code: code[:20] + "é" + code[21:],
        lambda code: code + "\n",
        forge.dangling,
        lambda code: code[:5] + ":::" + code[8:],
    ],
    ids=["lowercase-letter", "non-ascii", "trailing-newline", "dangling-character", "group-overflow"],
)
def test_text_outside_base45_is_base45_invalid(damage: Callable[[str], str], ed_issue: Callable[..., str], trust: TrustList) -> None:
    assert _reason(damage(ed_issue()), trust) is Reason.BASE45_INVALID


def test_flipping_any_base45_character_never_passes(ed_issue: Callable[..., str], trust: TrustList) -> None:
    code = ed_issue()
    body_length = len(code) - len("HCQ1:")
    reasons = {_reason(forge.flip_character(code, position), trust) for position in range(body_length)}
    assert Reason.OK not in reasons
    assert Reason.DECOMPRESS_FAILED in reasons


def test_a_truncated_stream_or_a_missing_zlib_layer_fails_to_decompress(ed_issue: Callable[..., str], trust: TrustList) -> None:
    code = ed_issue()
    message = forge.message_of(code)
    raw = forge.assemble(message.protected, {}, message.payload, message.signature)
    assert _reason(forge.truncated(code), trust) is Reason.DECOMPRESS_FAILED
    assert _reason(forge.base45_text(raw), trust) is Reason.DECOMPRESS_FAILED
    assert _reason(forge.base45_text(b""), trust) is Reason.DECOMPRESS_FAILED


def test_a_zlib_bomb_is_refused_before_it_inflates(trust: TrustList) -> None:
    assert _reason(forge.deflated_text(b"\x00" * 10_000_000), trust) is Reason.DECOMPRESS_FAILED


@pytest.mark.parametrize(
    "rebuild",
    [
        lambda m: forge.assemble(m.protected, {}, m.payload, m.signature, tag=None),
        lambda m: forge.assemble(m.protected, {}, m.payload, m.signature, tag=98),
        lambda m: forge.assemble(m.protected, {}, m.payload, m.signature) + b"\x00",
        lambda m: forge.assemble(m.protected, {4: m.kid}, m.payload, m.signature),
        lambda m: forge.assemble(b"", {}, m.payload, m.signature),
        lambda m: forge.assemble(b"\xa3\x01\x27\x01\x27\x04\x48" + m.kid, {}, m.payload, m.signature),
        lambda m: forge.assemble(b"\xa2\x04\x48" + m.kid + b"\x01\x27", {}, m.payload, m.signature),
        lambda m: forge.assemble(b"\xa2\xf5\x27\x04\x48" + m.kid, {}, m.payload, m.signature),
        lambda m: forge.assemble(m.protected, {}, m.payload.decode("latin-1"), m.signature),
        lambda m: b"\xd2\x9f" + forge.assemble(m.protected, {}, m.payload, m.signature)[2:] + b"\xff",
        lambda m: b"\xd2\x85" + forge.assemble(m.protected, {}, m.payload, m.signature)[2:] + b"\x40",
    ],
    ids=[
        "untagged", "wrong-tag", "trailing-byte", "unprotected-header", "empty-protected-header",
        "duplicate-header-key", "unsorted-header", "true-as-header-key", "payload-as-text",
        "indefinite-array", "five-items",
    ],
)
def test_anything_but_our_cose_sign1_shape_is_cose_invalid(rebuild, ed_issue: Callable[..., str], trust: TrustList) -> None:  # type: ignore[no-untyped-def]
    assert _reason(forge.rewrap(ed_issue(), rebuild), trust) is Reason.COSE_INVALID


@pytest.mark.parametrize(
    "change",
    [
        lambda claims: claims | {-65539: "Jane Doe"},
        lambda claims: {key: value for key, value in claims.items() if key != 4},
        lambda claims: claims | {4: str(claims[4])},
        lambda claims: claims | {6: float(claims[6])},
        lambda claims: claims | {LEVEL: "purple"},
        lambda claims: claims | {2: "Jane Doe"},
        lambda claims: claims | {-65538: "default"},
        lambda claims: claims | {4: claims[6] - 1},
        lambda claims: dict(reversed(claims.items())),
        lambda claims: [claims[key] for key in claims],
    ],
    ids=[
        "extra-claim", "missing-exp", "exp-as-text", "iat-as-float", "unknown-level", "name-as-pseudonym",
        "rule-set-without-version", "expires-before-issued", "keys-out-of-order", "array-not-map",
    ],
)
def test_claims_re_encoded_wrongly_are_claims_invalid(change, ed_issue: Callable[..., str], trust: TrustList) -> None:  # type: ignore[no-untyped-def]
    claims = forge.claims_map(issued_at=ISSUED_AT, expires_at=EXPIRES_AT)
    verdict = verify(forge.with_payload(ed_issue(), change(claims)), trust, at=CLOCK)
    assert verdict.reason is Reason.CLAIMS_INVALID
    assert verdict.kid is not None and verdict.person is None


@pytest.mark.parametrize("alg_id", [-35, -36, -37, 0, 1 << 40])
def test_an_algorithm_we_do_not_support_is_named_as_such(alg_id: int, ed_key: SigningKey, ed_issue: Callable[..., str], trust: TrustList) -> None:
    code = forge.with_header(ed_issue(), {1: alg_id, 4: ed_key.info.kid})
    assert _reason(code, trust) is Reason.UNSUPPORTED_ALGORITHM


def test_a_key_missing_from_the_trust_list_is_unknown(trust: TrustList) -> None:
    stranger = generate_signing_key(Algorithm.EDDSA, KEYS_FROM, KEYS_UNTIL)
    code = forge.sign_claims(stranger, forge.claims_map(issued_at=ISSUED_AT, expires_at=EXPIRES_AT))
    verdict = verify(code, trust, at=CLOCK)
    assert verdict.reason is Reason.UNKNOWN_KEY and verdict.kid == stranger.info.kid.hex()


def test_changing_a_claim_without_re_signing_breaks_the_signature(ed_issue: Callable[..., str], trust: TrustList) -> None:
    red = ed_issue(Level.RED)
    forged = forge.with_payload(red, forge.claims_map(issued_at=ISSUED_AT, expires_at=EXPIRES_AT, level="green"))
    assert _reason(forged, trust) is Reason.SIGNATURE_INVALID


def test_swapping_the_kid_for_another_trusted_key_breaks_the_signature(ed_issue: Callable[..., str], trust: TrustList) -> None:
    other_ed = generate_signing_key(Algorithm.EDDSA, KEYS_FROM, KEYS_UNTIL)
    both = TrustList.of([*trust, other_ed.info])
    assert _reason(forge.with_header(ed_issue(), {1: -8, 4: other_ed.info.kid}), both) is Reason.SIGNATURE_INVALID


def test_an_algorithm_in_the_header_other_than_the_keys_is_a_bad_signature(ed_key: SigningKey, es_key: SigningKey, ed_issue: Callable[..., str], es_issue: Callable[..., str], trust: TrustList) -> None:
    # Even re-signed by the right key, ES256 under an Ed25519 kid (and the reverse) fails.
    assert _reason(forge.resigned_with_header(ed_key, ed_issue(), {1: -7, 4: ed_key.info.kid}), trust) is Reason.SIGNATURE_INVALID
    assert _reason(forge.resigned_with_header(es_key, es_issue(), {1: -8, 4: es_key.info.kid}), trust) is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize("cut", [1, 32, 64])
def test_a_shortened_signature_is_invalid(cut: int, es_issue: Callable[..., str], trust: TrustList) -> None:
    code = forge.rewrap(es_issue(), lambda m: forge.assemble(m.protected, {}, m.payload, m.signature[:-cut]))
    assert _reason(code, trust) is Reason.SIGNATURE_INVALID


def _listed(key: SigningKey, status: KeyStatus = KeyStatus.ACTIVE, valid_from: int = KEYS_FROM, valid_until: int = KEYS_UNTIL) -> KeyInfo:
    return KeyInfo(key.info.kid, key.info.alg, key.info.public_key, valid_from, valid_until, status)


def test_a_revoked_key_has_its_own_reason_apart_from_an_expired_one(ed_key: SigningKey, ed_issue: Callable[..., str]) -> None:
    assert _reason(ed_issue(), TrustList.of([_listed(ed_key, KeyStatus.REVOKED)])) is Reason.KEY_REVOKED
    expired_key = _listed(ed_key, valid_until=ISSUED_AT + 60)
    assert _reason(ed_issue(), TrustList.of([expired_key])) is Reason.KEY_NOT_VALID


def test_a_code_signed_outside_its_keys_validity_is_key_not_valid(ed_key: SigningKey) -> None:
    early = forge.sign_claims(ed_key, forge.claims_map(issued_at=KEYS_FROM - 60, expires_at=KEYS_FROM + 60))
    assert _reason(early, TrustList.of([ed_key.info]), at=KEYS_FROM) is Reason.KEY_NOT_VALID
    outliving = forge.sign_claims(ed_key, forge.claims_map(issued_at=KEYS_UNTIL - 60, expires_at=KEYS_UNTIL + 60))
    assert _reason(outliving, TrustList.of([ed_key.info]), at=KEYS_UNTIL - 30) is Reason.KEY_NOT_VALID


def test_when_kids_collide_every_listed_key_is_tried(ed_key: SigningKey, ed_issue: Callable[..., str]) -> None:
    # The same kid listed twice: once revoked, once valid. The valid listing must win,
    # and a second listing does not turn an unusable key into a usable one.
    collided = TrustList.of([_listed(ed_key, KeyStatus.REVOKED), _listed(ed_key)])
    assert _reason(ed_issue(), collided) is Reason.OK
    both_unusable = TrustList.of([_listed(ed_key, KeyStatus.REVOKED), _listed(ed_key, valid_until=ISSUED_AT + 60)])
    assert _reason(ed_issue(), both_unusable) is Reason.KEY_NOT_VALID
    both_revoked = TrustList.of([_listed(ed_key, KeyStatus.REVOKED), _listed(ed_key, KeyStatus.REVOKED, valid_until=ISSUED_AT + 60)])
    assert _reason(ed_issue(), both_revoked) is Reason.KEY_REVOKED


def test_time_bounds_are_issued_at_inclusive_and_expires_at_exclusive(ed_issue: Callable[..., str], trust: TrustList) -> None:
    code = ed_issue()
    assert _reason(code, trust, at=ISSUED_AT - 1) is Reason.NOT_YET_VALID
    assert _reason(code, trust, at=ISSUED_AT) is Reason.OK
    assert _reason(code, trust, at=EXPIRES_AT - 1) is Reason.OK
    assert _reason(code, trust, at=EXPIRES_AT) is Reason.EXPIRED


def test_a_code_on_the_revocation_list_is_revoked_and_others_are_not(ed_issue: Callable[..., str], trust: TrustList) -> None:
    code, other = ed_issue(), ed_issue(person="p-43")
    revoked = {revocation_id_of(code)}
    assert _reason(code, trust, revoked=revoked) is Reason.REVOKED
    assert _reason(other, trust, revoked=revoked) is Reason.OK
    assert verify(code, trust, at=CLOCK).revocation_id == revocation_id_of(code)


def test_the_checkpoint_admits_only_the_levels_it_names(ed_issue: Callable[..., str], trust: TrustList) -> None:
    yellow, red = ed_issue(Level.YELLOW), ed_issue(Level.RED)
    assert _reason(yellow, trust) is Reason.LEVEL_NOT_ADMITTED
    assert _reason(yellow, trust, admit={Level.GREEN, Level.YELLOW}) is Reason.OK
    assert _reason(red, trust, admit={Level.GREEN, Level.YELLOW}) is Reason.LEVEL_NOT_ADMITTED
    assert _reason(red, trust, admit={Level.RED}) is Reason.OK


def test_the_first_failed_check_is_the_reason(ed_key: SigningKey, ed_issue: Callable[..., str]) -> None:
    # Revoked key, expired, on the revocation list and red: the key check comes first.
    code = ed_issue(Level.RED)
    trust = TrustList.of([_listed(ed_key, KeyStatus.REVOKED)])
    assert _reason(code, trust, at=EXPIRES_AT + 1, revoked={revocation_id_of(code)}) is Reason.KEY_REVOKED
    assert _reason(code, TrustList.of([ed_key.info]), at=EXPIRES_AT + 1, revoked={revocation_id_of(code)}) is Reason.EXPIRED
    assert _reason(code, TrustList.of([ed_key.info]), revoked={revocation_id_of(code)}) is Reason.REVOKED
