"""Signed lists: how a trust list or a revocation list travels to checkpoints.

```json
{"format": "healthcode-signed-list/1",
 "signer": {"kid": ..., "alg": "EdDSA", "public_key": ..., "valid_from": ..., "valid_until": ..., "status": "active"},
 "list": "Base64 of the list's own JSON bytes",
 "signature": "Base64 of the raw signature over exactly those bytes"}
```

The list-signing key is not a code-signing key: it lives apart (`KEYDIR/list-signing/`)
and signs lists only, so a checkpoint can pin it. The signature covers the list's bytes
as sent, so no JSON canonicalisation is needed; the list inside names its own format
(trust or revocation list), so one cannot be passed off as the other.

The signer's public record travels with the list. That proves the list is whole, not
who made it: only a key pinned by the checkpoint (a flag, or the page's first load)
says that, and a list from any other signer is refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from codes.keys import KeyInfo, SigningKey
from codes.trust import PublicKeyRecord, TrustListError, key_info_of, record_of

SIGNED_LIST_FORMAT = "healthcode-signed-list/1"


class SignedListError(ValueError):
    """A signed list that is malformed, tampered with, or signed by a key not pinned."""


class SignedListDocument(BaseModel):
    """The envelope of a signed list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["healthcode-signed-list/1"]
    signer: PublicKeyRecord
    list: str
    signature: str


@dataclass(frozen=True, slots=True)
class SignedList:
    """The list bytes of an envelope whose signature holds; `pinned` says whether its
    signer was compared with a pinned key (otherwise only the list's wholeness is known)."""

    body: bytes
    signer: KeyInfo
    pinned: bool


def sign_list(key: SigningKey, body: bytes) -> bytes:
    """The signed-list file carrying `body` (a list's JSON), signed by the list-signing key."""
    document = SignedListDocument(
        format=SIGNED_LIST_FORMAT,
        signer=record_of(key.info),
        list=base64.b64encode(body).decode("ascii"),
        signature=base64.b64encode(key.sign(body)).decode("ascii"),
    )
    return orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


def open_signed_list(data: bytes, pinned: KeyInfo | None) -> SignedList:
    """The list inside a signed-list file; raises `SignedListError` unless its signature
    holds under the signer it names and, when `pinned` is given, that signer is the pinned
    key. A list is never used on a failed check: a tampered list is refused, not trusted."""
    try:
        document = SignedListDocument.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise SignedListError(f"not a signed list: {first['msg']} at {first['loc']}") from None
    try:
        signer = key_info_of(document.signer)
        body = base64.b64decode(document.list, validate=True)
        signature = base64.b64decode(document.signature, validate=True)
    except (binascii.Error, TrustListError) as error:
        raise SignedListError(f"not a signed list: {error}") from None
    if pinned is not None and (signer.kid != pinned.kid or signer.public_key != pinned.public_key):
        raise SignedListError(f"signed by key {signer.kid.hex()}, not by the pinned list-signing key {pinned.kid.hex()}")
    if not signer.verify(signature, body):
        raise SignedListError("the signature does not match the list (tampered with, or damaged)")
    return SignedList(body, signer, pinned is not None)


def parse_list_key(data: bytes) -> KeyInfo:
    """A pinned list-signing key from its public record (KEYDIR/list-signing/<kid>.json);
    raises `SignedListError` if it is not one."""
    try:
        return key_info_of(PublicKeyRecord.model_validate_json(data))
    except ValidationError as error:
        first = error.errors()[0]
        raise SignedListError(f"not a public key record: {first['msg']} at {first['loc']}") from None
    except TrustListError as error:
        raise SignedListError(str(error)) from None
