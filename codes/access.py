"""Who may fetch a resident's code: access tokens, keyed references and request limits (pure).

A resident's access token is an HMAC of their pseudonym under a secret kept with the
signing keys (`codes.keystore.resident_secrets`): the authority hands it to the resident
(`healthcode residents token`), and any worker holding the key directory can check it
without a lookup, so a token check costs the same whether or not the pseudonym exists.
The same secret keys the header by which workers vouch to each other for a request they
forward (`peer_token`). Another, never rotated (`codes.keystore.reference_secret`), keys
the references that would otherwise let someone map a contact back to a case
(`keyed_ref`, `evidence_ref`). Each use has its own label inside the HMAC, so no value of
one kind is ever a value of another.

Rate limits are token buckets with explicit times: `RateLimits.wait` says how long a
caller must wait, or 0 when it may go on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

SECRET_BYTES = 32
_TOKEN = b"healthcode resident token v1\x1f"
_REF = b"healthcode reference v1\x1f"
_EVIDENCE = b"healthcode evidence v1\x1f"
_PEER = b"healthcode peer v1"


def _mac(secret: bytes, label: bytes, text: str) -> bytes:
    return hmac.new(secret, label + text.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def resident_token(secret: bytes, person: str) -> str:
    """The access token of `person` (43 URL-safe characters: 256 bits)."""
    return base64.urlsafe_b64encode(_mac(secret, _TOKEN, person)).rstrip(b"=").decode()


def token_matches(secrets: Iterable[bytes], person: str, presented: str | None) -> bool:
    """True when `presented` is `person`'s token under one of `secrets` (the current one and
    any kept while tokens are rotated). Every secret is compared, in constant time, whatever
    the answer: the time taken does not tell whether the pseudonym exists or how close a guess came."""
    given = (presented or "").encode("utf-8", "surrogateescape")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(resident_token(secret, person).encode(), given)
    return matched and presented is not None


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header; None for anything else."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def keyed_ref(secret: bytes, ref: str) -> str:
    """A reference (16 hex characters) that only holders of `secret` can compute from `ref`:
    an unkeyed hash of a case's person and event id could be recomputed by anyone who
    guesses them."""
    return _mac(secret, _REF, ref).hex()[:16]


def evidence_ref(secret: bytes, source: str) -> str:
    """How a code record on `hc.codes` names the source of a reason's evidence (16 hex characters).

    The case notices on `hc.cases` must carry the case's pseudonym beside its keyed reference
    (presence finds the case's stays by it), so a record citing that same reference would let
    anyone reading both topics link a contact to the case. Keyed again under its own label, a
    source still groups the records one case caused, and only holders of the secret can tie it
    to a notice.
    """
    return _mac(secret, _EVIDENCE, source).hex()[:16]


def peer_token(secret: bytes) -> str:
    """What a worker sends with a request it forwards to the owner of the person's partition."""
    return base64.urlsafe_b64encode(hmac.new(secret, _PEER, hashlib.sha256).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class RatePolicy:
    """At most `burst` requests at once, refilled at `per_minute` a minute."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_minute > 0 and burst >= 1")


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimits:
    """One token bucket per key (a token, a client address), the least recently used
    forgotten beyond `capacity` keys so that many callers cannot grow memory without bound
    (a forgotten key starts again full: at worst one extra burst)."""

    def __init__(self, policy: RatePolicy, capacity: int = 100_000) -> None:
        self.policy = policy
        self.capacity = capacity
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Take one request for `key` at monotonic time `now`: 0 when allowed, else the
        seconds until one would be (nothing is taken then)."""
        policy = self.policy
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(policy.burst), now)
        rate = policy.per_minute / 60.0
        bucket.tokens = min(float(policy.burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
