"""Trust lists: the public keys a checkpoint accepts, as a JSON file.

```json
{
  "format": "healthcode-trust-list/2",
  "issued_at": "2022-04-11T00:00:00Z",
  "next_update": "2022-04-12T00:00:00Z",
  "keys": [
    {"kid": "a1b2c3d4e5f60718", "alg": "EdDSA",
     "public_key": "MCowBQYDK2VwAyEA...",
     "valid_from": "2022-04-01T00:00:00Z", "valid_until": "2022-06-30T00:00:00Z",
     "status": "active"}
  ]
}
```

`public_key` is the standard Base64 of the DER SubjectPublicKeyInfo; `kid` must be its
key id. A revoked key stays listed with `"status": "revoked"` so codes it signed are
refused as KEY_REVOKED rather than as an unknown key. Several keys may share a kid.
Checkpoints receive the list inside a signed envelope (`codes.signed`).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codes.keys import Algorithm, KeyInfo, KeyProblem, KeyStatus
from codes.listtimes import ListTimes, body_json, list_times
from scoring.timeutil import format_rfc3339, parse_rfc3339

TRUST_LIST_FORMAT = "healthcode-trust-list/2"


class TrustListError(ValueError):
    """A trust list (or key description) that cannot be used."""


class PublicKeyRecord(BaseModel):
    """One key as JSON: in a trust list, and as KEYDIR/<kid>.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kid: str = Field(pattern=r"^[0-9a-f]{16}$")
    alg: Algorithm
    public_key: str
    valid_from: str
    valid_until: str
    status: KeyStatus


class TrustListDocument(BaseModel):
    """A trust list file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["healthcode-trust-list/2"]
    issued_at: str
    next_update: str
    keys: list[PublicKeyRecord]


def record_of(info: KeyInfo) -> PublicKeyRecord:
    """The JSON face of a key."""
    der = info.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKeyRecord(
        kid=info.kid.hex(),
        alg=info.alg,
        public_key=base64.b64encode(der).decode("ascii"),
        valid_from=format_rfc3339(info.valid_from),
        valid_until=format_rfc3339(info.valid_until),
        status=info.status,
    )


def key_info_of(record: PublicKeyRecord) -> KeyInfo:
    """The key a JSON record describes; raises `TrustListError` if it is inconsistent."""
    try:
        der = base64.b64decode(record.public_key, validate=True)
        public_key = serialization.load_der_public_key(der)
        return KeyInfo(
            kid=bytes.fromhex(record.kid),
            alg=record.alg,
            public_key=public_key,  # type: ignore[arg-type]
            valid_from=parse_rfc3339(record.valid_from),
            valid_until=parse_rfc3339(record.valid_until),
            status=record.status,
        )
    except (binascii.Error, ValueError, KeyProblem) as error:
        raise TrustListError(f"key {record.kid}: {error}") from None


@dataclass(frozen=True)
class TrustList:
    """Trusted keys indexed by kid, ready for verification; `times` are the list file's
    dates (None for a list made in memory, which no one distributes)."""

    by_kid: dict[bytes, tuple[KeyInfo, ...]]
    times: ListTimes | None = None

    @classmethod
    def of(cls, keys: Iterable[KeyInfo], times: ListTimes | None = None) -> TrustList:
        """A trust list of these keys."""
        grouped: dict[bytes, list[KeyInfo]] = defaultdict(list)
        for info in keys:
            grouped[info.kid].append(info)
        return cls({kid: tuple(infos) for kid, infos in grouped.items()}, times)

    def keys_for(self, kid: bytes) -> tuple[KeyInfo, ...]:
        """Every trusted key with this kid (usually one)."""
        return self.by_kid.get(kid, ())

    def __iter__(self) -> Iterator[KeyInfo]:
        return (info for infos in self.by_kid.values() for info in infos)


def parse_trust_list(data: bytes) -> TrustList:
    """A trust list from its JSON (the body of a signed list); raises `TrustListError` if malformed."""
    try:
        document = TrustListDocument.model_validate_json(data)
    except ValidationError as error:
        raise TrustListError(f"not a trust list: {error.errors()[0]['msg']} at {error.errors()[0]['loc']}") from None
    try:
        times = list_times(document.issued_at, document.next_update)
    except ValueError as error:
        raise TrustListError(f"trust list dates: {error}") from None
    return TrustList.of((key_info_of(record) for record in document.keys), times)


def dump_trust_list(keys: Iterable[KeyInfo], times: ListTimes) -> bytes:
    """The JSON of a trust list with `keys`, ordered by kid then validity."""
    ordered = sorted(keys, key=lambda info: (info.kid, info.valid_from, info.valid_until))
    records = [record_of(info).model_dump(mode="json") for info in ordered]
    return body_json(times, TRUST_LIST_FORMAT, keys=records)
