"""Strict CBOR decoding: one item, deterministic encoding, integer-keyed maps."""

from __future__ import annotations

from typing import Any

import cbor2

# A code nests at most a tag, an array and a map; deeper input is an attack, not a code.
_MAX_DEPTH = 4
# cbor2 decodes maps to dict, and to its frozendict inside tags; a concrete-type check
# is much cheaper than the Mapping ABC on the verification path.
_MAPS = (dict, cbor2.frozendict)


class CborError(ValueError):
    """Bytes that are not one strict, deterministically encoded CBOR item."""


def first_item(data: bytes) -> Any:
    """The first CBOR item in `data`, refusing indefinite lengths, duplicate map keys and
    deep nesting; raises `CborError`. Bytes after the item are the caller's to refuse."""
    try:
        return cbor2.loads(data, allow_duplicate_keys=False, allow_indefinite=False, max_depth=_MAX_DEPTH)
    # cbor2's C decoder signals malformed input with several exception types (decode
    # errors, overflow, recursion, memory); all of them mean "not a code" here.
    except Exception as error:
        raise CborError(f"not CBOR: {error}") from None


def strict_loads(data: bytes) -> Any:
    """The one CBOR item `data` holds; raises `CborError` unless encoding it again gives
    back exactly `data`. That rejects trailing bytes, non-minimal integers and lengths
    and stray tags; map key order is the caller's to check (`has_int_keys`), which is
    cheaper than canonical re-encoding and just as strict."""
    item = first_item(data)
    try:
        canonical = cbor2.dumps(item)
    except Exception as error:  # e.g. a decoded value cbor2 cannot encode back
        raise CborError(f"not re-encodable: {error}") from None
    if canonical != data:
        raise CborError("not deterministically encoded CBOR (or trailing bytes)")
    return item


def has_int_keys(item: Any, keys: tuple[int, ...]) -> bool:
    """Whether `item` is a map whose keys are exactly `keys`, as CBOR integers, in that
    order (give `keys` in deterministic-encoding order). A CBOR `true` or `1.0` compares
    equal to 1 in Python and must not pass for it."""
    return isinstance(item, _MAPS) and tuple(item) == keys and all(type(key) is int for key in item)
