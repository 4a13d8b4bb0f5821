"""Keys, trust lists and codes for the codes tests; every key is made here and thrown away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from codes import Algorithm, Level, SigningKey, TrustList, generate_signing_key, issue
from scoring.timeutil import parse_rfc3339

KEYS_FROM = parse_rfc3339("2022-04-01T00:00:00Z")
KEYS_UNTIL = KEYS_FROM + 90 * 86400
ISSUED_AT = parse_rfc3339("2022-04-11T08:00:00Z")
EXPIRES_AT = ISSUED_AT + 12 * 3600
CLOCK = ISSUED_AT + 3600


@dataclass(frozen=True)
class Issuer:
    """A key and a shortcut to issue codes with it."""

    key: SigningKey

    def __call__(
        self,
        level: Level | str = Level.GREEN,
        person: str = "p-42",
        issued_at: int = ISSUED_AT,
        expires_at: int = EXPIRES_AT,
    ) -> str:
        return issue(
            self.key, person=person, level=level, rule_set="default@1", issued_at=issued_at, expires_at=expires_at
        )


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return generate_signing_key(Algorithm.EDDSA, KEYS_FROM, KEYS_UNTIL)


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return generate_signing_key(Algorithm.ES256, KEYS_FROM, KEYS_UNTIL)


@pytest.fixture(scope="session")
def trust(ed_key: SigningKey, es_key: SigningKey) -> TrustList:
    return TrustList.of([ed_key.info, es_key.info])


@pytest.fixture(scope="session")
def ed_issue(ed_key: SigningKey) -> Callable[..., str]:
    return Issuer(ed_key)


@pytest.fixture(scope="session")
def es_issue(es_key: SigningKey) -> Callable[..., str]:
    return Issuer(es_key)
