"""Signed, offline-verifiable health codes in the manner of the EU Digital COVID Certificate.

A code is CBOR claims (`codes.claims`) in COSE_Sign1 (`codes.cose`), zlib, Base45 and
the `HCQ1:` prefix (`codes.envelope`), shown as a QR code (`codes.qr`). Checkpoints
verify offline against a trust list (`codes.trust`) and optionally a revocation list
(`codes.revocation`), both delivered signed by a list-signing key (`codes.signed`). The
core takes explicit times and does no I/O apart from the key
files of `codes.keystore`.

    key = signing_key_at(load_signing_keys(keydir), at=issued_at)
    text = issue(key, person="p-42", level="green", rule_set="default@1",
                 issued_at=issued_at, expires_at=issued_at + 12 * 3600)
    verdict = verify(text, parse_trust_list(trust_json), at=now)
    png = render_qr(text, "png")
"""

from codes.claims import ClaimsError, HealthClaims, Level
from codes.issue import IssueError, issue
from codes.keys import Algorithm, KeyInfo, KeyProblem, KeyStatus, SigningKey, generate_signing_key, signing_key_at
from codes.keystore import KeyStoreError, list_key_infos, list_signing_key, load_key_infos, load_signing_keys
from codes.listtimes import ListTimes
from codes.qr import QrError, read_qr, render_qr
from codes.revocation import (
    RevocationList,
    RevocationListError,
    dump_revocation_list,
    parse_revocation_list,
    revocation_id,
    revocation_id_of,
)
from codes.signed import SignedList, SignedListError, open_signed_list, parse_list_key, sign_list
from codes.trust import TrustList, TrustListError, dump_trust_list, parse_trust_list
from codes.verify import Reason, Verdict, verify

__all__ = [
    "Algorithm",
    "ClaimsError",
    "HealthClaims",
    "IssueError",
    "KeyInfo",
    "KeyProblem",
    "KeyStatus",
    "KeyStoreError",
    "Level",
    "ListTimes",
    "QrError",
    "Reason",
    "RevocationList",
    "RevocationListError",
    "SignedList",
    "SignedListError",
    "SigningKey",
    "TrustList",
    "TrustListError",
    "Verdict",
    "dump_revocation_list",
    "dump_trust_list",
    "generate_signing_key",
    "issue",
    "list_key_infos",
    "list_signing_key",
    "load_key_infos",
    "load_signing_keys",
    "open_signed_list",
    "parse_list_key",
    "parse_revocation_list",
    "parse_trust_list",
    "read_qr",
    "render_qr",
    "revocation_id",
    "revocation_id_of",
    "sign_list",
    "signing_key_at",
    "verify",
]
