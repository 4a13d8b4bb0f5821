"""Write the conformance vectors: one JSON file per case in this directory.

Run `.venv/bin/python -m tests.vectors.generate` from the repository root. Each file
holds a code, the signed trust list (exactly as `keys trust-list` writes it and a
checkpoint receives it) and validation clock to check it with, the levels the checkpoint
admits, revocation ids, and the verdict every verifier must reach:

    {"description", "code", "trust_list", "validation_clock", "admit", "revoked",
     "expected": {"valid", "reason", "person", "level", "issued_at", "expires_at", "kid"}}

Fields the verifier cannot read are null (before COSE parses: all; when only the
claims are bad: all but kid). Keys are made fresh on every run and thrown away: only
their public parts are written, in the trust lists. The script checks each case
against `codes.verify` before writing, so a disagreement stops it.

`lists/` holds the same signed trust list and the union of every case's revocation ids
as a signed revocation list (`trust.json`, `revoked.json`), with the list-signing public
key to pin (`list-key.json`): a checkpoint serving those lists reaches every vector's
verdict (each case's code is revoked only in the `revoked` case, which is checked too).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import orjson

from codes import Algorithm, KeyStatus, Level, SigningKey, TrustList, dump_trust_list, issue, sign_list, verify
from codes.claims import EXP, ISS, LEVEL, SUB
from codes.keys import KeyInfo, generate_signing_key
from codes.listtimes import ListTimes
from codes.revocation import dump_revocation_list, revocation_id_of
from codes.trust import parse_trust_list, record_of
from codes.verify import Reason
from scoring.timeutil import format_rfc3339, parse_rfc3339
from tests.vectors import forge

HERE = Path(__file__).resolve().parent
ISSUED_AT = parse_rfc3339("2022-04-11T08:00:00Z")
EXPIRES_AT = ISSUED_AT + 12 * 3600
CLOCK = ISSUED_AT + 3600
KEYS_FROM = parse_rfc3339("2022-04-01T00:00:00Z")
KEYS_UNTIL = KEYS_FROM + 90 * 86400
PERSON = "p-42"
RULE_SET = "default@1"
# The lists are current at every case's clock (the earliest is KEYS_FROM).
LIST_TIMES = ListTimes(KEYS_FROM - 86400, KEYS_FROM + 60 * 86400)


@dataclass(frozen=True)
class Keys:
    """The throwaway keys of one generation run."""

    ed: SigningKey
    es: SigningKey
    stranger: SigningKey
    revoked: SigningKey
    short: SigningKey
    lists: SigningKey

    def trust_list(self) -> bytes:
        revoked = self.revoked.info
        listed = [
            self.ed.info,
            self.es.info,
            KeyInfo(revoked.kid, revoked.alg, revoked.public_key, revoked.valid_from, revoked.valid_until, KeyStatus.REVOKED),
            self.short.info,
        ]
        return dump_trust_list(listed, LIST_TIMES)


def make_keys() -> Keys:
    def key(alg: Algorithm, until: int = KEYS_UNTIL) -> SigningKey:
        return generate_signing_key(alg, KEYS_FROM, until)

    return Keys(
        ed=key(Algorithm.EDDSA),
        es=key(Algorithm.ES256),
        stranger=key(Algorithm.EDDSA),
        revoked=key(Algorithm.EDDSA),
        short=key(Algorithm.EDDSA, until=ISSUED_AT + 6 * 3600),
        lists=key(Algorithm.EDDSA),
    )


@dataclass(frozen=True)
class Case:
    """One vector: the code, what the checkpoint knows, and the verdict."""

    name: str
    description: str
    code: str
    reason: Reason
    claims: dict[str, Any] | None = None
    kid: str | None = None
    clock: int = CLOCK
    admit: tuple[str, ...] = ("green",)
    revoked: tuple[str, ...] = field(default=())

    def expected(self) -> dict[str, Any]:
        claims = self.claims or {}
        return {
            "valid": self.reason is Reason.OK,
            "reason": self.reason.value,
            "person": claims.get("person"),
            "level": claims.get("level"),
            "issued_at": format_rfc3339(claims["issued_at"]) if claims else None,
            "expires_at": format_rfc3339(claims["expires_at"]) if claims else None,
            "kid": self.kid,
        }


def _claims(level: str = "green", issued_at: int = ISSUED_AT, expires_at: int = EXPIRES_AT) -> dict[str, Any]:
    return {"person": PERSON, "level": level, "issued_at": issued_at, "expires_at": expires_at}


def _issue(key: SigningKey, level: str = "green", issued_at: int = ISSUED_AT, expires_at: int = EXPIRES_AT) -> str:
    return issue(key, person=PERSON, level=level, rule_set=RULE_SET, issued_at=issued_at, expires_at=expires_at)


def cases(keys: Keys) -> list[Case]:
    ed, es = keys.ed, keys.es
    green = _issue(ed)
    red = _issue(ed, "red")
    ed_kid, es_kid = ed.info.kid.hex(), es.info.kid.hex()
    raw_claims = forge.claims_map(issued_at=ISSUED_AT, expires_at=EXPIRES_AT, rule_set=RULE_SET)
    message = forge.message_of(green)
    revoked_code = _issue(ed, issued_at=ISSUED_AT + 60)
    return [
        Case("ok_eddsa", "valid green code signed with Ed25519", green, Reason.OK, _claims(), ed_kid),
        Case("ok_es256", "valid green code signed with ES256 (raw r||s signature)", _issue(es), Reason.OK, _claims(), es_kid),
        Case("ok_es256_twin_signature", "an ES256 code with its twin signature (r, n - s), equally valid",
             forge.malleated(_issue(es)), Reason.OK, _claims(), es_kid),
        Case("ok_yellow_admitted", "yellow code at a checkpoint admitting green and yellow", _issue(es, "yellow"),
             Reason.OK, _claims("yellow"), es_kid, admit=("green", "yellow")),
        Case("ok_last_second", "one second before expiry", green, Reason.OK, _claims(), ed_kid, clock=EXPIRES_AT - 1),
        Case("prefix_eu", "the EU certificate prefix HC1: instead of HCQ1:", "HC1:" + green[5:], Reason.MALFORMED_PREFIX),
        Case("prefix_lowercase", "prefix in lower case", "hcq1:" + green[5:], Reason.MALFORMED_PREFIX),
        Case("prefix_empty", "empty text", "", Reason.MALFORMED_PREFIX),
        Case("prefix_junk_100k", "100 KB of junk", "#" * 100_000, Reason.MALFORMED_PREFIX),
        Case("base45_lowercase", "a lower-case letter in the Base45 body", green[:20] + "a" + green[21:], Reason.BASE45_INVALID),
        Case("base45_dangling", "cut to a length that leaves a single character in the last group",
             forge.dangling(green), Reason.BASE45_INVALID),
        Case("base45_non_ascii", "a non-ASCII character", green[:20] + "é" + green[21:], Reason.BASE45_INVALID),
        Case("base45_overflow", "a three-character group above 0xFFFF", green[:5] + ":::" + green[8:], Reason.BASE45_INVALID),
        Case("zlib_flipped", "one Base45 character changed (data check fails)", forge.flip_character(green, 30),
             Reason.DECOMPRESS_FAILED),
        Case("zlib_truncated", "cut after the last whole three-character group but one", forge.truncated(green),
             Reason.DECOMPRESS_FAILED),
        Case("zlib_missing", "Base45 of the COSE message without zlib",
             forge.base45_text(forge.assemble(message.protected, {}, message.payload, message.signature)),
             Reason.DECOMPRESS_FAILED),
        Case("ok_deflated", "the COSE message deflated at level 9 rather than stored", forge.deflated_text(forge.cose_of(green)),
             Reason.OK, _claims(), ed_kid),
        Case("zlib_empty", "the prefix alone: no zlib stream at all", "HCQ1:", Reason.DECOMPRESS_FAILED),
        Case("zlib_trailing", "a byte after the end of the zlib stream", forge.base45_text(forge.zlib_of(green) + b"\x00"),
             Reason.DECOMPRESS_FAILED),
        Case("zlib_too_large", "a zlib stream that inflates to 4097 bytes", forge.deflated_text(b"\x00" * 4097),
             Reason.DECOMPRESS_FAILED),
        Case("base45_final_pair_overflow", "a final two-character group above 0xFF",
             green[: 5 + 3 * ((len(green) - 5) // 3)] + "::", Reason.BASE45_INVALID),
        Case("cose_not_cbor", "zlib of bytes that are not CBOR", forge.deflated_text(b"\xff\xfe not cbor"), Reason.COSE_INVALID),
        Case("cose_untagged", "COSE_Sign1 without tag 18",
             forge.rewrap(green, lambda m: forge.assemble(m.protected, {}, m.payload, m.signature, tag=None)),
             Reason.COSE_INVALID),
        Case("cose_trailing", "a byte after the COSE message",
             forge.rewrap(green, lambda m: forge.assemble(m.protected, {}, m.payload, m.signature) + b"\x00"),
             Reason.COSE_INVALID),
        Case("cose_unprotected_kid", "kid moved into the unprotected header",
             forge.rewrap(green, lambda m: forge.assemble(cbor2.dumps({1: -8}), {4: m.kid}, m.payload, m.signature)),
             Reason.COSE_INVALID),
        Case("cose_duplicate_header_key", "alg twice in the protected header",
             forge.rewrap(green, lambda m: forge.assemble(b"\xa3\x01\x27\x01\x27\x04\x48" + m.kid, {}, m.payload, m.signature)),
             Reason.COSE_INVALID),
        Case("claims_extra", "an extra claim (a name) re-encoded without re-signing",
             forge.with_payload(green, raw_claims | {-65539: "Jane Doe"}), Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("claims_missing_exp", "exp removed", forge.with_payload(green, {k: v for k, v in raw_claims.items() if k != EXP}),
             Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("claims_exp_text", "exp as a text string", forge.with_payload(green, raw_claims | {EXP: str(EXPIRES_AT)}),
             Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("claims_unknown_level", "level purple", forge.with_payload(green, raw_claims | {LEVEL: "purple"}),
             Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("claims_duplicate_key", "sub twice in the claims map",
             forge.rewrap(green, lambda m: forge.assemble(m.protected, {}, _duplicate_sub(m.payload), m.signature)),
             Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("claims_signed_but_bad", "properly signed claims with a name as pseudonym",
             forge.sign_claims(ed, raw_claims | {SUB: "Jane Doe"}), Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("ok_issuer_non_ascii", "an issuer of 64 non-ASCII characters (128 UTF-8 bytes), properly signed",
             forge.sign_claims(ed, raw_claims | {ISS: "é" * 64}), Reason.OK, _claims(), ed_kid),
        Case("claims_issuer_too_long", "an issuer of 65 characters, properly signed",
             forge.sign_claims(ed, raw_claims | {ISS: "é" * 65}), Reason.CLAIMS_INVALID, kid=ed_kid),
        Case("alg_bignum", "alg 2**64 as a CBOR bignum (tag 2) in the header",
             forge.with_header(green, {1: 2**64, 4: ed.info.kid}), Reason.UNSUPPORTED_ALGORITHM, _claims(), ed_kid),
        Case("alg_es384", "alg ES384 (-35) in the header", forge.with_header(green, {1: -35, 4: ed.info.kid}),
             Reason.UNSUPPORTED_ALGORITHM, _claims(), ed_kid),
        Case("key_unknown", "signed with a key not on the trust list", _issue(keys.stranger), Reason.UNKNOWN_KEY,
             _claims(), keys.stranger.info.kid.hex()),
        Case("signature_level_changed", "level red changed to green without re-signing",
             forge.with_payload(red, raw_claims), Reason.SIGNATURE_INVALID, _claims(), ed_kid),
        Case("signature_kid_swapped", "kid swapped for another trusted key's",
             forge.with_header(green, {1: -8, 4: keys.short.info.kid}), Reason.SIGNATURE_INVALID, _claims(),
             keys.short.info.kid.hex()),
        Case("signature_alg_mismatch", "ES256 in the header over an Ed25519 key's kid",
             forge.resigned_with_header(ed, green, {1: -7, 4: ed.info.kid}), Reason.SIGNATURE_INVALID, _claims(), ed_kid),
        Case("signature_truncated", "signature cut to 63 bytes",
             forge.rewrap(green, lambda m: forge.assemble(m.protected, {}, m.payload, m.signature[:-1])),
             Reason.SIGNATURE_INVALID, _claims(), ed_kid),
        Case("key_revoked", "signed with a key the trust list marks revoked", _issue(keys.revoked), Reason.KEY_REVOKED,
             _claims(), keys.revoked.info.kid.hex()),
        Case("key_outlived", "code expires after its key's validity",
             forge.sign_claims(keys.short, raw_claims), Reason.KEY_NOT_VALID, _claims(), keys.short.info.kid.hex()),
        Case("key_before_validity", "signed before the key's validity began",
             forge.sign_claims(ed, forge.claims_map(issued_at=KEYS_FROM - 3600, expires_at=KEYS_FROM + 3600)),
             Reason.KEY_NOT_VALID, _claims(issued_at=KEYS_FROM - 3600, expires_at=KEYS_FROM + 3600), ed_kid,
             clock=KEYS_FROM),
        Case("not_yet_valid", "clock one second before issued-at", green, Reason.NOT_YET_VALID, _claims(), ed_kid,
             clock=ISSUED_AT - 1),
        Case("expired", "clock at expires-at", green, Reason.EXPIRED, _claims(), ed_kid, clock=EXPIRES_AT),
        Case("revoked", "the code is on the revocation list (issued a minute later, so no other case's code is)",
             revoked_code, Reason.REVOKED, _claims(issued_at=ISSUED_AT + 60), ed_kid,
             revoked=(revocation_id_of(revoked_code),)),
        Case("level_not_admitted", "red code at a green-only checkpoint", red, Reason.LEVEL_NOT_ADMITTED, _claims("red"),
             ed_kid),
        Case("level_yellow_not_admitted", "yellow code at a green-only checkpoint", _issue(es, "yellow"),
             Reason.LEVEL_NOT_ADMITTED, _claims("yellow"), es_kid),
    ]


def _duplicate_sub(payload: bytes) -> bytes:
    """The claims map with one more entry, a second `sub` key (map length bumped by one)."""
    assert payload[0] == 0xA6
    return b"\xa7" + payload[1:] + cbor2.dumps(SUB) + cbor2.dumps("someone-else")


def document(case: Case, signed_trust: bytes) -> dict[str, Any]:
    return {
        "description": case.description,
        "code": case.code,
        "trust_list": orjson.loads(signed_trust),
        "validation_clock": format_rfc3339(case.clock),
        "admit": list(case.admit),
        "revoked": list(case.revoked),
        "expected": case.expected(),
    }


def check(case: Case, trust: TrustList, all_revoked: set[str]) -> None:
    """Stop unless `codes.verify` reaches the case's reason, with the case's own revocation
    ids and with every case's (as a checkpoint serving `lists/` has them)."""
    for revoked in (set(case.revoked), all_revoked):
        verdict = verify(case.code, trust, at=case.clock, admit={Level(n) for n in case.admit}, revoked=revoked)
        if verdict.reason is not case.reason:
            raise SystemExit(f"{case.name}: expected {case.reason}, verify says {verdict.reason}")


def write_vectors(directory: Path) -> list[str]:
    """Generate fresh keys and write every case to `directory` and the signed lists to
    `directory/lists`; returns the case names."""
    keys = make_keys()
    trust_json = keys.trust_list()
    trust = parse_trust_list(trust_json)
    signed_trust = sign_list(keys.lists, trust_json)
    all_cases = cases(keys)
    all_revoked = {code_id for case in all_cases for code_id in case.revoked}
    written = []
    for case in all_cases:
        check(case, trust, all_revoked)
        path = directory / f"{case.name}.json"
        path.write_bytes(orjson.dumps(document(case, signed_trust), option=orjson.OPT_INDENT_2) + b"\n")
        written.append(case.name)
    for stale in set(directory.glob("*.json")) - {directory / f"{name}.json" for name in written}:
        stale.unlink()
    lists = directory / "lists"
    lists.mkdir(exist_ok=True)
    (lists / "trust.json").write_bytes(signed_trust)
    (lists / "revoked.json").write_bytes(sign_list(keys.lists, dump_revocation_list(all_revoked, LIST_TIMES)))
    (lists / "list-key.json").write_text(record_of(keys.lists.info).model_dump_json(indent=2) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":
    names = write_vectors(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
    print(f"wrote {len(names)} vectors")
